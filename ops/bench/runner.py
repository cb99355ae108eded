"""`scimflow bench`: an IdP's initial sync against the real stack, with baselines.

In one run on one machine: (1) the bare Falcon baseline, driven with the same POST bodies and
the same existence-check URLs at the same concurrency (this also measures the load generator's
own cost per request); (2) the acknowledgement phase, POSTs only, on a database of its own;
(3) the sync (Okta or Entra request shapes) over HTTP against the real API, Celery workers,
PostgreSQL and Redis, with deactivations sent while it runs, sampling the resident memory of
the API and worker processes and the CPU time of every role, with a webhook endpoint of the
tenant receiving every event on a local receiver (deprovision -> webhook latency, delivery
throughput against the receiver's own capacity, and a second endpoint catching up on the
backlog half-way through the sync: delivery's capacity with the sync running); (4) the
existence phase, look-ups of existing and missing userNames against the loaded tenant; (5) the
application API's session check: deprovision -> session check revoked during the sync, then
its throughput against the bare Falcon GET (`ops/bench/sessions.py`); (6) a raw batched upsert
of the same rows. It prints throughput, latency, convergence, apply rate, peak connections,
memory and CPU, 429/5xx counts, deprovision latency (applied, and delivered
by webhook), webhook throughput (during the sync, catching up during it, replaying after
it), and the ratios to the baselines; and the stack's own /metrics, scraped once the sync
converged, against the benchmark's counts (`ops/bench/scrape.py`).
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.ack import (
    BENCH_TENANT,
    acknowledgement_phase,
    connector,
    post_users,
    start_scimflow,
    start_workers,
)
from scimflow.ops.bench.catch_up import CatchUp, SyncActivity
from scimflow.ops.bench.console import Console, PageLoad, screenshots_when, start_console
from scimflow.ops.bench.cpu import CpuMeter
from scimflow.ops.bench.entra import Entra
from scimflow.ops.bench.existence import (
    existence_paths,
    existence_phase,
    get_paths,
    rate_and_latency,
)
from scimflow.ops.bench.idp_requests import IdpRequests
from scimflow.ops.bench.load import Driver, Tally
from scimflow.ops.bench.okta import Okta
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.receiver import CATCH_UP_PATH
from scimflow.ops.bench.report import report
from scimflow.ops.bench.rss import RssSampler
from scimflow.ops.bench.scrape import compare
from scimflow.ops.bench.sessions import (
    CHECK,
    SERIAL_CHECKS,
    RevocationWatch,
    app_connector,
    baseline_checks,
    check_phase,
    create_app_key,
    fine_latency,
)
from scimflow.ops.bench.stack import (
    BIN,
    Processes,
    baseline_command,
    free_port,
    fresh_database,
    wait_http,
)
from scimflow.ops.bench.sync import (
    EXISTENCE_GET,
    POST_USERS,
    SyncState,
    deactivate_during_sync,
    push_groups,
    push_users,
)
from scimflow.ops.bench.webhooks import (
    WebhookTarget,
    delivery_knobs,
    receiver_capacity,
    replay_backlog,
    start_webhooks,
    typical_event,
    wait_delivered,
    webhook_figures,
)
from scimflow.ops.connection_budget import Budget
from scimflow.ops.progress import Countdown, PhaseBars
from scimflow.pipeline.settings import ApiServer, Settings

PHASES = ("ack", "sync", "existence")
# The processes whose memory is sampled during the sync (names given to `Processes.spawn`).
SAMPLED_ROLES = ("api", "worker")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    token: str
    tenant_id: str
    database_url: str


def run(settings: Settings, args: argparse.Namespace) -> int:
    phases = selected_phases(args.phases)
    plan = SyncPlan(args.users, args.groups, args.members, args.deactivations,
                    uuid.uuid4().hex[:6])
    idp = idp_requests_for(args.idp, passwords=args.passwords)
    # A fresh sealing key per run: the API seals each pushed password with it and the workers
    # open it to hash (`pipeline/passwords/crypto.py`).
    args.password_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    # The workers' /metrics (the events worker's is on the next port).
    args.worker_metrics_port = free_port()
    with tempfile.TemporaryDirectory(prefix="scimflow-bench-") as workdir:
        summary = _run_all(plan, idp, phases, args, Path(workdir))
    report(summary, args.json)
    return 0 if summary["correctness"]["ok"] else 1


def selected_phases(spec: str) -> tuple[str, ...]:
    phases = tuple(p.strip() for p in spec.split(",") if p.strip())
    unknown = set(phases) - set(PHASES)
    if unknown or not phases:
        raise SystemExit(f"--phases takes a comma-separated subset of {','.join(PHASES)}")
    if "existence" in phases and "sync" not in phases:
        raise SystemExit("--phases: the existence phase looks up the users the sync loads")
    return phases


def idp_requests_for(idp: str, *, passwords: bool) -> IdpRequests:
    return Entra() if idp == "entra" else Okta(passwords=passwords)


def _run_all(plan: SyncPlan, idp: IdpRequests, phases: tuple[str, ...],
             args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"machine": _machine(), "plan": _plan(plan, idp, phases, args)}
    baseline = _bare_falcon_baseline(plan, idp, phases, args, workdir)
    checks: dict[str, Any] = {"ok": True}
    if "ack" in phases:
        summary["ack"] = acknowledgement_phase(plan, idp, args, workdir,
                                               lambda url: _env(url, args))
        checks["ok"] = summary["ack"]["server_errors_5xx"] == 0 and not summary["ack"]["failures"]
    raw_rate = None
    if "sync" in phases:
        with fresh_database(args.admin_database_url) as database_url:
            processes = Processes(workdir, _env(database_url, args))
            try:
                summary |= _sync(plan, idp, phases, args, processes=processes,
                                 database_url=database_url)
            finally:
                processes.stop_all()
            raw_rate = measure.raw_upsert_rate(database_url, plan, idp)
        checks = summary["correctness"] | {"ok": checks["ok"] and summary["correctness"]["ok"]}
    summary["correctness"] = checks
    summary["baselines"] = _baselines(summary, baseline, raw_rate)
    summary["load_generator"] = baseline["generator"]
    return summary


def _plan(plan: SyncPlan, idp: IdpRequests, phases: tuple[str, ...],
          args: argparse.Namespace) -> dict[str, Any]:
    return vars(plan) | {
        "idp": idp.name, "passwords": idp.passwords,
        "phases": list(phases), "concurrency": args.concurrency, "workers": args.workers,
        "apply_after_ack": args.apply_after_ack, "api_server": args.api_server,
        "webhooks": args.webhooks, "sessions": args.sessions,
        "session_checks": args.session_checks if args.sessions and "sync" in phases else 0,
        "existence_requests": args.existence_requests if "existence" in phases else 0}


def _baselines(summary: dict[str, Any], baseline: dict[str, Any],
               raw_rate: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "post" in baseline:
        out |= {"bare_falcon_post_per_s": baseline["post"]["per_s"],
                "bare_falcon_p99_ms": baseline["post"]["p99_ms"],
                "ack_vs_bare_falcon": _ratio(summary["ack"]["post_per_s"],
                                             baseline["post"]["per_s"])}
    if "get" in baseline:
        get, existence = baseline["get"], summary["existence"]
        out |= {"bare_falcon_get_per_s": get["per_s"], "bare_falcon_get_p50_ms": get["p50_ms"],
                "bare_falcon_get_p99_ms": get["p99_ms"],
                "existence_vs_bare_falcon_get": _ratio(existence["per_s"], get["per_s"]),
                "existence_p99_vs_bare_falcon_get_p99": _ratio(existence["p99_ms"] or 0,
                                                               get["p99_ms"] or 0)}
    if "session_get" in baseline and "sessions" in summary:
        get, check = baseline["session_get"], summary["sessions"]["check"]
        out |= {"bare_falcon_session_get_per_s": get["per_s"],
                "bare_falcon_session_get_p50_ms": get["p50_ms"],
                "bare_falcon_session_get_p99_ms": get["p99_ms"],
                "session_check_vs_bare_falcon_get": _ratio(check["per_s"], get["per_s"]),
                "session_check_p99_vs_bare_falcon_get_p99": _ratio(check["p99_ms"] or 0,
                                                                   get["p99_ms"] or 0)}
        serial, one = baseline["session_get_serial"], check["one_at_a_time"]
        out |= {"bare_falcon_session_get_one_at_a_time_p50_ms": serial["p50_ms"],
                "bare_falcon_session_get_one_at_a_time_p99_ms": serial["p99_ms"],
                "session_check_one_at_a_time_p99_vs_bare_falcon": _ratio(one["p99_ms"] or 0,
                                                                         serial["p99_ms"] or 0)}
    if raw_rate is not None:
        out |= {"raw_batched_upsert_rows_per_s": round(raw_rate),
                "apply_vs_raw_upsert": _ratio(summary["apply"]["users_per_s"], raw_rate)}
    return out


def _env(database_url: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SCIMFLOW_DATABASE_URL": database_url, "SCIMFLOW_BROKER_URL": args.broker_url,
        "SCIMFLOW_LOG_LEVEL": "WARNING", "SCIMFLOW_WORKER_CONCURRENCY": str(args.workers),
        "SCIMFLOW_API_PROCESSES": str(args.api_processes),
        "SCIMFLOW_API_SERVER": args.api_server,
        "SCIMFLOW_PASSWORD_KEY": args.password_key,
        # The webhook receiver is this benchmark's own, on 127.0.0.1.
        "SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "SCIMFLOW_WORKER_METRICS_PORT": str(args.worker_metrics_port),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    env.update(stack_settings(args.stack_settings))
    return env


def stack_settings(assignments: list[str]) -> dict[str, str]:
    """`--set name=value` options as the environment variables the processes read."""
    out: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            raise SystemExit(f"--set takes NAME=VALUE, not {assignment!r}")
        out[f"SCIMFLOW_{name.strip().upper()}"] = value
    return out


def _bare_falcon_baseline(plan: SyncPlan, idp: IdpRequests, phases: tuple[str, ...],
                          args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The bare app, alone on the machine: the acknowledgement phase's POSTs, then the
    existence phase's GETs (same bodies, URLs, concurrency and server configuration)."""
    processes = Processes(workdir, _env("", args))
    port = free_port()
    processes.spawn("baseline", baseline_command(
        port, args.api_processes, args.api_threads, ApiServer(args.api_server),
        args.api_connections))
    out: dict[str, Any] = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/scim/v2/Users")
        if "ack" in phases:
            out["post"] = _timed(lambda: post_users(
                plan, idp, args.concurrency, port=port, token="",
                count=min(args.baseline_requests, plan.users)))
        if "existence" in phases:
            paths = existence_paths(plan, idp, args.existence_requests)
            out["get"] = _timed(lambda: get_paths(connector(port, ""), args.concurrency, paths,
                                                  check=False)[0], kind="GET")
        if "sync" in phases and args.sessions:
            out["session_get"] = _timed(lambda: baseline_checks(port, args.concurrency,
                                                                args.session_checks), kind=CHECK)
            out["session_get_serial"] = _timed(lambda: baseline_checks(
                port, 1, min(SERIAL_CHECKS, args.session_checks)), kind=CHECK,
                summarize=fine_latency)
    finally:
        processes.stop_all()
    out["generator"] = {f"{method}_cpu_us_per_request": out[method].pop("cpu_us")
                        for method in ("post", "get", "session_get", "session_get_serial")
                        if method in out}
    return out


def _timed(load: Callable[[], Tally], kind: str = "POST",
           summarize: Callable[[Tally], dict[str, Any]] | None = None) -> dict[str, Any]:
    cpu_started = time.process_time()
    tally = load()
    cpu = time.process_time() - cpu_started
    if tally.failures:
        raise RuntimeError(f"the bare Falcon baseline failed: {tally.failures[:3]}")
    figures = summarize(tally) if summarize else rate_and_latency(tally, kind)
    return figures | {"cpu_us": round(cpu / max(1, figures["requests"]) * 1e6, 1)}


def _sync(plan: SyncPlan, idp: IdpRequests, phases: tuple[str, ...], args: argparse.Namespace,
          *, processes: Processes, database_url: str) -> dict[str, Any]:
    port, created = start_scimflow(processes, args, with_workers=not args.apply_after_ack)
    target = Target("127.0.0.1", port, created["token"], created["tenant_id"], database_url)
    hooks = start_webhooks(processes, args) if args.webhooks else None
    watch = (RevocationWatch(port, create_app_key(processes, target.tenant_id), target.tenant_id)
             if args.sessions else None)
    capacity = receiver_capacity(hooks, typical_event(plan, idp)) if hooks else None

    def roles() -> dict[str, int]:
        return {name: p.pid for name, p in processes.running.items() if name in SAMPLED_ROLES}

    def every_role() -> dict[str, int]:
        return {name: p.pid for name, p in processes.running.items()}

    catch_up = (CatchUp(processes, hooks, database_url, target.tenant_id, every_role)
                if hooks else None)
    console = (start_console(processes)
               if args.console_operators or args.console_screenshots else None)
    with (RssSampler(roles) as rss, CpuMeter(every_role) as cpu,
          measure.ConnectionPeak(database_url) as peak):
        if catch_up is not None:
            catch_up.watch(plan.users)
        with _console_during_sync(console, plan, args) as (pages, state):
            tally, started, acked = asyncio.run(
                _drive(plan, idp, args, target, lambda: start_workers(processes, args),
                       watch=watch, state=state))
        activity = SyncActivity(state.users_acked_at, time.time())
        converged = _wait_converged(database_url, started)
        if hooks is not None and catch_up is not None:
            catch_up.wait_enabled()
            wait_delivered(hooks, database_url, target.tenant_id, _status_printer())
            wait_delivered(hooks, database_url, target.tenant_id, _status_printer(),
                           log=CATCH_UP_PATH)
            catch_up.finish()
    measured = Measured(tally, acked - started, converged,
                        measure.apply_figures(database_url, target.tenant_id), peak.peak)
    summary = _summary(plan, idp, args, target, measured)
    summary["metrics"] = _scraped_metrics(args, port, measured)
    if pages is not None:
        summary["console"] = pages.figures
    summary["rss"] = rss.summary()
    summary["cpu"] = cpu.summary()
    if hooks is not None and capacity is not None and catch_up is not None:
        summary["webhooks"] = _webhooks(hooks, target, state.deprovision_acked, capacity,
                                        env=processes.env, args=args)
        summary["webhooks"]["catch_up_during_sync"] = catch_up.figures(activity, capacity)
        with CpuMeter(every_role) as replay_cpu:
            backlog = replay_backlog(processes, hooks, database_url, target.tenant_id,
                                     _status_printer())
        summary["webhooks"]["backlog_replay"] = _replay_figures(backlog, capacity,
                                                                replay_cpu.summary())
        _check_webhooks(summary)
    if "existence" in phases:
        summary["existence"] = existence_phase(plan, idp, connector(port, target.token),
                                               args.concurrency, args.existence_requests)
        existence = summary["existence"]
        summary["correctness"]["existence_wrong_answers"] = existence["wrong_answers"]
        summary["correctness"]["ok"] &= (existence["wrong_answers"] == 0
                                         and existence["server_errors_5xx"] == 0
                                         and not existence["failures"])
    if watch is not None:
        summary["sessions"] = _sessions(plan, args, watch, state, every_role)
        _check_sessions(summary)
    return summary


@contextmanager
def _console_during_sync(console: Console | None, plan: SyncPlan, args: argparse.Namespace,
                         ) -> Iterator[tuple[PageLoad | None, SyncState]]:
    """Operators reloading the bench tenant's console page from the sync's first request to
    its last user acknowledged (and the screenshots, half-way through the users)."""
    state = SyncState()
    if console is None:
        yield None, state
        return
    pages = PageLoad(console, console.tenant_path(BENCH_TENANT), args.console_operators,
                     args.console_interval)
    # The first user: applied by half-way, with its deactivation and group changes to come.
    shots = (screenshots_when(console, BENCH_TENANT, plan.user_name(0), args.console_screenshots,
                              lambda: len(state.users_acked_at) >= plan.users // 2)
             if args.console_screenshots is not None else None)
    pages.start()
    try:
        yield pages, state
    finally:
        pages.stop()
        if shots is not None:
            shots.join(timeout=120)


def _scraped_metrics(args: argparse.Namespace, port: int, measured: Measured) -> dict[str, Any]:
    """The API's and the workers' /metrics against what the sync sent and applied (before the
    existence phase, whose requests are not the sync's)."""
    tally = measured.tally
    return compare(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{args.worker_metrics_port}",
                   requests=sum(tally.statuses.values()), throttled_429=tally.statuses[429],
                   users_applied=measured.figures.users_applied)


def _sessions(plan: SyncPlan, args: argparse.Namespace, watch: RevocationWatch,
              state: SyncState, every_role: Callable[[], dict[str, int]]) -> dict[str, Any]:
    """Deprovision -> session check revoked (during the sync), then the session check's
    capacity on the converged tenant."""
    deactivated = set(plan.deactivated())
    active = [user_id for index, user_id in sorted(state.user_ids.items())
              if index not in deactivated]
    return {"deprovision_to_revoked": watch.figures(len(state.deprovision_acked)),
            "check": check_phase(app_connector(watch.port, watch.key), watch.tenant_id, active,
                                 concurrency=args.concurrency, checks=args.session_checks,
                                 roots=every_role)}


def _check_sessions(summary: dict[str, Any]) -> None:
    """Every deprovisioned user's session read revoked; every check answered 200 active."""
    revoked, check = summary["sessions"]["deprovision_to_revoked"], summary["sessions"]["check"]
    checks = summary["correctness"]
    checks["session_revocations_missed"] = revoked["deactivations"] - revoked["count"]
    checks["session_check_wrong_answers"] = check["wrong_answers"]
    checks["ok"] &= (revoked["failure_count"] == 0
                     and revoked["registered"] >= revoked["deactivations"]
                     and checks["session_revocations_missed"] == 0
                     and check["wrong_answers"] == 0 and check["server_errors_5xx"] == 0
                     and check["register_failures"] == 0 and not check["failures"])


def _check_webhooks(summary: dict[str, Any]) -> None:
    """Every event arrived at both endpoints, every delivery signed with its secret."""
    delivery = summary["webhooks"]["delivery"]
    caught_up = summary["webhooks"]["catch_up_during_sync"]
    checks = summary["correctness"]
    checks["webhooks_all_arrived"] = delivery["all_arrived"]
    checks["webhook_bad_signatures"] = delivery["bad_signatures"]
    checks["webhooks_catch_up_all_arrived"] = caught_up["all_arrived"]
    checks["webhook_catch_up_bad_signatures"] = caught_up["bad_signatures"]
    checks["ok"] &= (delivery["all_arrived"] and delivery["bad_signatures"] == 0
                     and caught_up["all_arrived"] and caught_up["bad_signatures"] == 0)


def _webhooks(hooks: WebhookTarget, target: Target, deprovision_acks: dict[str, float],
              capacity: dict[str, Any], *, env: dict[str, str],
              args: argparse.Namespace) -> dict[str, Any]:
    figures = webhook_figures(hooks, target.database_url, target.tenant_id, deprovision_acks,
                              capacity)
    return figures | {"knobs": delivery_knobs(env, args.events_threads)}


def _replay_figures(backlog: dict[str, Any], capacity: dict[str, Any],
                    cpu: dict[str, Any]) -> dict[str, Any]:
    """The replay's rate, and the CPU per event of the sender and of the receiver: the
    receiver's share shows how far it is from bounding delivery."""
    events = backlog["events"]

    def cpu_us(role: str) -> float | None:
        seconds = cpu["roles"].get(role, {}).get("cpu_s")
        return round(seconds / events * 1e6) if events and seconds is not None else None

    return backlog | {"vs_receiver_capacity": _ratio(backlog["per_s"], capacity["per_s"]),
                      "events_worker_cpu_us_per_event": cpu_us("events"),
                      "receiver_cpu_us_per_event": cpu_us("receiver"), "cpu": cpu}


async def _drive(plan: SyncPlan, idp: IdpRequests, args: argparse.Namespace, target: Target,
                 start_workers: Callable[[], None], *,
                 watch: RevocationWatch | None,
                 state: SyncState) -> tuple[Tally, float, float]:
    # Bars on a terminal (ops/progress.py); elsewhere a line a second, as before.
    with PhaseBars(suffix=" acknowledged") as bars:
        state.progress = bars.show if bars.drawing else _progress_printer()
        return await _send_sync(plan, idp, args, target, start_workers, watch=watch,
                                state=state)


async def _send_sync(plan: SyncPlan, idp: IdpRequests, args: argparse.Namespace,
                     target: Target, start_workers: Callable[[], None], *,
                     watch: RevocationWatch | None, state: SyncState,
                     ) -> tuple[Tally, float, float]:
    tally = Tally()
    driver, connect = Driver(tally), connector(target.port, target.token, idp.user_agent)
    started = time.perf_counter()
    tally.started = started

    def add_sessions(user_id: str) -> None:
        measure.insert_sessions(target.database_url, target.tenant_id, user_id)

    # With sessions measured, each is registered through the application API and followed
    # until it reads revoked; without, rows are inserted so the workers still revoke some.
    deactivations = asyncio.create_task(
        deactivate_during_sync(plan, idp, driver, connect(), state=state,
                               before_deactivating=watch.register if watch else add_sessions))
    revocations = (asyncio.create_task(watch.follow(state.deprovision_acked, deactivations))
                   if watch else None)
    await push_users(plan, idp, driver, connect, concurrency=args.concurrency, state=state)
    users_acked = time.perf_counter()
    tally.finished = users_acked
    if args.apply_after_ack:
        start_workers()
    await push_groups(plan, idp, driver, connect,
                      concurrency=min(args.concurrency, plan.groups), state=state)
    await deactivations
    if revocations is not None:
        await revocations
    return tally, started, users_acked


def _progress_printer() -> Callable[[str, int, int], None]:
    last = [0.0]

    def show(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done == total:
            last[0] = now
            print(f"  {phase}: {done}/{total} acknowledged", file=sys.stderr, flush=True)

    return show


def _status_printer() -> Callable[[str], None]:
    last = [0.0]

    def show(line: str) -> None:
        if time.monotonic() - last[0] >= 1.0:
            last[0] = time.monotonic()
            print(line, file=sys.stderr, flush=True)

    return show


def _wait_converged(database_url: str, started: float, timeout: float = 1800) -> float:
    with Countdown("applying (commands drained)") as drain:
        while time.perf_counter() - started < timeout:
            pending = measure.backlog(database_url)
            drain.remaining(pending)
            if pending == 0:
                return time.perf_counter() - started
            if not drain.drawing:
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


def _summary(plan: SyncPlan, idp: IdpRequests, args: argparse.Namespace, target: Target,
             measured: Measured) -> dict[str, Any]:
    tally, figures = measured.tally, measured.figures
    expected = measure.Expected(managers=idp.sends_manager,
                                passwords=idp.passwords)
    checks = measure.correctness(target.database_url, target.tenant_id, plan, expected)
    budget = Budget.of(Settings(api_processes=args.api_processes, worker_replicas=1,
                                worker_concurrency=args.workers))
    checks["ok"] = _correct(checks) and tally.server_errors == 0 and not tally.failures
    return {
        "sync_requests": _sync_requests(tally, measured.ack_seconds),
        "converge_seconds": round(measured.converge_seconds, 1),
        "apply": {"users_per_s": round(figures.users_per_second),
                  "users": figures.users_applied},
        "deprovision": {"count": len(figures.deprovision_latencies),
                        "p50_s": measure.percentile(figures.deprovision_latencies, 0.50),
                        "p99_s": measure.percentile(figures.deprovision_latencies, 0.99)},
        "postgres_connections": {"peak": measured.peak_connections, "budget": budget.total},
        "correctness": checks,
    }


def _sync_requests(tally: Tally, users_seconds: float) -> dict[str, Any]:
    """Rates are per second of the users' part of the sync (first request to last user
    acknowledged), where every POST follows its existence GET."""
    posts, gets = tally.latencies.get(POST_USERS, []), tally.latencies.get(EXISTENCE_GET, [])
    return {
        "post_per_s": round(len(posts) / users_seconds) if users_seconds else 0,
        "p50_ms": measure.percentile_ms(posts, 0.50),
        "p99_ms": measure.percentile_ms(posts, 0.99),
        "existence_get": {"per_s": round(len(gets) / users_seconds) if users_seconds else 0,
                          "p50_ms": measure.percentile_ms(gets, 0.50),
                          "p99_ms": measure.percentile_ms(gets, 0.99), "requests": len(gets)},
        "by_kind": {kind: {"requests": len(values),
                           "p50_ms": measure.percentile_ms(values, 0.50),
                           "p99_ms": measure.percentile_ms(values, 0.99)}
                    for kind, values in sorted(tally.latencies.items())},
        "users_seconds": round(users_seconds, 1),
        "requests": sum(tally.statuses.values()), "throttled_429_503": tally.throttled,
        "server_errors_5xx": tally.server_errors, "failures": tally.failures[:5]}


def _correct(checks: dict[str, Any]) -> bool:
    expected = checks["expected"]
    return bool(checks["users"] == checks["distinct_user_names"] == expected["users"]
            and checks["groups"] == expected["groups"]
            and checks["memberships"] == expected["memberships"]
            and checks["inactive_users"] == expected["inactive_users"]
            and checks["users_with_manager"] == expected["users_with_manager"]
            and checks["users_with_password"] == expected["users_with_password"]
            and checks["live_sessions_of_inactive_users"] == 0
            and checks["dead_letters"] == 0)


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def _ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None
