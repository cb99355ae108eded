"""`scimflow bench`: an Okta-style initial sync against the real stack, with baselines.

In one run on one machine: (1) the bare Falcon baseline, driven with the same POST bodies at
the same concurrency (this also measures the load generator's own cost per request);
(2) the sync over HTTP against the real API, Celery workers, PostgreSQL and Redis, with
deactivations sent while it runs; (3) a raw batched upsert of the same rows. It prints
throughput, latency, convergence, apply rate, peak connections, 429/5xx counts, deprovision
latency, and the ratios to the baselines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.ack import (
    acknowledgement_phase,
    connector,
    post_users,
    start_scimflow,
    start_workers,
)
from scimflow.ops.bench.load import Driver, Tally
from scimflow.ops.bench.okta import (
    SyncPlan,
    SyncState,
    deactivate_during_sync,
    push_groups,
    push_users,
)
from scimflow.ops.bench.stack import (
    BIN,
    Processes,
    baseline_command,
    free_port,
    fresh_database,
    wait_http,
)
from scimflow.pipeline.settings import ApiServer, Settings
from scimflow.pipeline.store.budget import Budget


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    token: str
    tenant_id: str
    database_url: str


def run(settings: Settings, args: argparse.Namespace) -> int:
    plan = SyncPlan(args.users, args.groups, args.members, args.deactivations,
                    uuid.uuid4().hex[:6])
    with tempfile.TemporaryDirectory(prefix="scimflow-bench-") as workdir:
        summary = _run_all(plan, args, Path(workdir))
    _report(summary, args.json)
    checks = summary["correctness"]
    return 0 if checks["ok"] else 1


def _run_all(plan: SyncPlan, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    baseline = _bare_falcon_baseline(plan, args, workdir)
    ack = acknowledgement_phase(plan, args, workdir, lambda url: _env(url, args))
    with fresh_database(args.admin_database_url) as database_url:
        processes = Processes(workdir, _env(database_url, args))
        try:
            sync = _sync(plan, args, processes, database_url)
        finally:
            processes.stop_all()
        raw_rate = measure.raw_upsert_rate(database_url, plan)
    sync["ack"] = ack
    sync["correctness"]["ok"] &= ack["server_errors_5xx"] == 0 and not ack["failures"]
    sync["baselines"] = {
        "bare_falcon_post_per_s": baseline["rate"],
        "bare_falcon_p99_ms": baseline["p99_ms"],
        "raw_batched_upsert_rows_per_s": round(raw_rate),
        "ack_vs_bare_falcon": _ratio(sync["ack"]["post_per_s"], baseline["rate"]),
        "apply_vs_raw_upsert": _ratio(sync["apply"]["users_per_s"], raw_rate),
    }
    sync["load_generator"] = baseline["generator"]
    return sync


def _env(database_url: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SCIMFLOW_DATABASE_URL": database_url, "SCIMFLOW_BROKER_URL": args.broker_url,
        "SCIMFLOW_LOG_LEVEL": "WARNING", "SCIMFLOW_WORKER_CONCURRENCY": str(args.workers),
        "SCIMFLOW_API_PROCESSES": str(args.api_processes),
        "SCIMFLOW_API_SERVER": args.api_server,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


def _bare_falcon_baseline(plan: SyncPlan, args: argparse.Namespace,
                          workdir: Path) -> dict[str, Any]:
    processes = Processes(workdir, _env("", args))
    port = free_port()
    processes.spawn("baseline", baseline_command(
        port, args.api_processes, args.api_threads, ApiServer(args.api_server),
        args.api_connections))
    try:
        wait_http(f"http://127.0.0.1:{port}/scim/v2/Users")
        count = min(args.baseline_requests, plan.users)
        cpu_started = time.process_time()
        tally = post_users(plan, args.concurrency, port, "", count)
        cpu = time.process_time() - cpu_started
    finally:
        processes.stop_all()
    if tally.failures:
        raise RuntimeError(f"the bare Falcon baseline failed: {tally.failures[:3]}")
    wall = tally.finished - tally.started
    generator_us = cpu / count * 1e6
    return {
        "rate": round(count / wall), "p99_ms": measure.percentile_ms(tally.latencies["POST"], 0.99),
        "generator": {"cpu_us_per_request": round(generator_us, 1),
                      "ceiling_requests_per_s_per_core": round(1e6 / generator_us)},
    }


def _sync(plan: SyncPlan, args: argparse.Namespace, processes: Processes,
          database_url: str) -> dict[str, Any]:
    port, created = start_scimflow(processes, args, with_workers=not args.apply_after_ack)
    target = Target("127.0.0.1", port, created["token"], created["tenant_id"], database_url)
    with measure.ConnectionPeak(database_url) as peak:
        tally, started, acked = asyncio.run(
            _drive(plan, args, target, lambda: start_workers(processes, args)))
        converged = _wait_converged(database_url, started)
    measured = Measured(tally, acked - started, converged,
                        measure.apply_figures(database_url, target.tenant_id), peak.peak)
    return _summary(plan, args, target, measured)


async def _drive(plan: SyncPlan, args: argparse.Namespace, target: Target,
                 start_workers: Callable[[], None]) -> tuple[Tally, float, float]:
    tally = Tally()
    driver, connect = Driver(tally), connector(target.port, target.token)
    state = SyncState(progress=_progress_printer(target.database_url))
    started = time.perf_counter()
    tally.started = started

    def add_sessions(user_id: str) -> None:
        measure.insert_sessions(target.database_url, target.tenant_id, user_id)

    deactivations = asyncio.create_task(
        deactivate_during_sync(plan, driver, connect(), state, add_sessions))
    await push_users(plan, driver, connect, args.concurrency, state)
    users_acked = time.perf_counter()
    tally.finished = users_acked
    if args.apply_after_ack:
        start_workers()
    await push_groups(plan, driver, connect, min(args.concurrency, plan.groups), state)
    await deactivations
    return tally, started, users_acked


def _progress_printer(database_url: str) -> Callable[[str, int, int], None]:
    last = [0.0]

    def show(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done == total:
            last[0] = now
            print(f"  {phase}: {done}/{total} acknowledged", file=sys.stderr, flush=True)

    return show


def _wait_converged(database_url: str, started: float, timeout: float = 1800) -> float:
    while time.perf_counter() - started < timeout:
        pending = measure.backlog(database_url)
        if pending == 0:
            return time.perf_counter() - started
        print(f"  applying: {pending} pending", file=sys.stderr, flush=True)
        time.sleep(0.5)
    raise RuntimeError("the sync did not converge")


@dataclass(frozen=True)
class Measured:
    tally: Tally
    ack_seconds: float
    converge_seconds: float
    figures: measure.ApplyFigures
    peak_connections: int


def _summary(plan: SyncPlan, args: argparse.Namespace, target: Target,
             measured: Measured) -> dict[str, Any]:
    tally, ack_seconds, figures = measured.tally, measured.ack_seconds, measured.figures
    converge_seconds, peak_connections = measured.converge_seconds, measured.peak_connections
    posts = tally.latencies.get("POST /Users", [])
    checks = measure.correctness(target.database_url, target.tenant_id, plan)
    budget = Budget.of(Settings(api_processes=args.api_processes, worker_replicas=1,
                                worker_concurrency=args.workers))
    checks["ok"] = _correct(checks) and tally.server_errors == 0 and not tally.failures
    return {
        "machine": _machine(),
        "plan": vars(plan) | {"concurrency": args.concurrency, "workers": args.workers,
                              "apply_after_ack": args.apply_after_ack,
                              "api_server": args.api_server},
        "sync_requests": {
            "post_per_s": round(len(posts) / ack_seconds) if ack_seconds else 0,
            "p50_ms": measure.percentile_ms(posts, 0.50),
            "p99_ms": measure.percentile_ms(posts, 0.99),
            "requests": sum(tally.statuses.values()), "throttled_429_503": tally.throttled,
            "server_errors_5xx": tally.server_errors, "failures": tally.failures[:5]},
        "converge_seconds": round(converge_seconds, 1),
        "apply": {"users_per_s": round(figures.users_per_second),
                  "users": figures.users_applied},
        "deprovision": {"count": len(figures.deprovision_latencies),
                        "p50_s": measure.percentile(figures.deprovision_latencies, 0.50),
                        "p99_s": measure.percentile(figures.deprovision_latencies, 0.99)},
        "postgres_connections": {"peak": peak_connections, "budget": budget.total},
        "correctness": checks,
    }


def _correct(checks: dict[str, Any]) -> bool:
    expected = checks["expected"]
    return bool(checks["users"] == checks["distinct_user_names"] == expected["users"]
            and checks["groups"] == expected["groups"]
            and checks["memberships"] == expected["memberships"]
            and checks["inactive_users"] == expected["inactive_users"]
            and checks["live_sessions_of_inactive_users"] == 0
            and checks["dead_letters"] == 0)


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def _ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    ack, sync, apply_ = summary["ack"], summary["sync_requests"], summary["apply"]
    base = summary["baselines"]
    lines = [
        f"machine            {summary['machine']}",
        f"plan               {summary['plan']}",
        f"acknowledged       {ack['post_per_s']} POST /Users per s, p50 {ack['p50_ms']} ms, "
        f"p99 {ack['p99_ms']} ms ({ack['requests']} POST only, {ack['throttled_429_503']} "
        f"throttled, {ack['server_errors_5xx']} 5xx, peak "
        f"{ack['peak_postgres_connections']} connections)",
        f"sync requests      {sync['post_per_s']} POST /Users per s with existence GETs, p50 "
        f"{sync['p50_ms']} ms, p99 {sync['p99_ms']} ms ({sync['requests']} requests, "
        f"{sync['throttled_429_503']} throttled, {sync['server_errors_5xx']} 5xx)",
        f"converged in       {summary['converge_seconds']} s",
        f"applied            {apply_['users_per_s']} users/s ({apply_['users']} users)",
        f"deprovision        p50 {summary['deprovision']['p50_s']} s, "
        f"p99 {summary['deprovision']['p99_s']} s ({summary['deprovision']['count']})",
        f"postgres conns     peak {summary['postgres_connections']['peak']} "
        f"(budget {summary['postgres_connections']['budget']})",
        f"baseline falcon    {base['bare_falcon_post_per_s']} POST/s (p99 "
        f"{base['bare_falcon_p99_ms']} ms) -> scimflow acks at {base['ack_vs_bare_falcon']}x",
        f"baseline upsert    {base['raw_batched_upsert_rows_per_s']} rows/s -> scimflow "
        f"applies at {base['apply_vs_raw_upsert']}x",
        f"load generator     {summary['load_generator']}",
        f"correctness        {summary['correctness']}",
    ]
    print("\n".join(lines))
