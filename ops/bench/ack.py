"""Acknowledgement capacity: `POST /Users` only, at the sync's concurrency, against the real API.

The bare Falcon baseline is driven with exactly the same requests (bodies, concurrency,
connections), so the ratio between the two is the cost of what scimflow does per request:
authenticate, validate, reserve the keys and journal the command durably, ring the workers.
The Okta-style sync reports its own POST rate too, but there every POST shares the API with
an existence GET, so it is not comparable with the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.http import Connection
from scimflow.ops.bench.idp_requests import SCIM_BASE, IdpRequests
from scimflow.ops.bench.load import Driver, Tally, run_closed_loop
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.stack import Processes, api_command, free_port, fresh_database, wait_http

# The tenant the benchmark's IdP provisions.
BENCH_TENANT = "bench"


def connector(port: int, token: str, user_agent: str = "") -> Callable[[], Connection]:
    headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if user_agent:
        headers["User-Agent"] = user_agent
    return lambda: Connection("127.0.0.1", port, headers)


def post_users(plan: SyncPlan, idp: IdpRequests, concurrency: int, *, port: int, token: str,
               count: int) -> Tally:
    """POST `count` user bodies at `concurrency`; the tally holds every latency and status.

    The bodies name no manager: managers exist only in the sync, which creates them first.
    """
    tally = Tally()
    driver = Driver(tally)

    async def one(connection: Connection, index: int) -> None:
        await driver.send(connection, "POST", "POST", f"{SCIM_BASE}/Users",
                          body=idp.user_body(plan, index % plan.users, None), expect=(201,))

    async def all_posts() -> None:
        tally.started = time.perf_counter()
        await run_closed_loop(connector(port, token), concurrency, range(count), one)
        tally.finished = time.perf_counter()

    asyncio.run(all_posts())
    return tally


def start_scimflow(processes: Processes, args: argparse.Namespace, *,
                   with_workers: bool) -> tuple[int, dict[str, Any]]:
    """Migrate, create the bench tenant, start the API (and the workers); (port, tenant)."""
    processes.run(["scimflow", "migrate"])
    created = json.loads(subprocess.run(
        ["scimflow", "tenant", "create", BENCH_TENANT, "--json"], env=processes.env, check=True,
        capture_output=True, text=True).stdout)
    port = free_port()
    processes.spawn("api", api_command(port, args.api_processes, args.api_threads))
    if with_workers:
        start_workers(processes, args)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    return port, created


def start_workers(processes: Processes, args: argparse.Namespace) -> None:
    processes.spawn("worker", ["scimflow", "worker", "--concurrency", str(args.workers)])
    processes.spawn("beat", ["scimflow", "beat", "--schedule", str(processes.workdir / "beat")])


def acknowledgement_phase(plan: SyncPlan, idp: IdpRequests, args: argparse.Namespace,
                          workdir: Path,
                          env: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    """POST-only load on a scratch database; workers apply meanwhile unless --apply-after-ack."""
    with fresh_database(args.admin_database_url) as database_url:
        processes = Processes(workdir, env(database_url))
        try:
            port, created = start_scimflow(processes, args, with_workers=not args.apply_after_ack)
            with measure.ConnectionPeak(database_url) as peak:
                tally = post_users(plan, idp, args.concurrency, port=port,
                                   token=created["token"],
                                   count=min(args.baseline_requests, plan.users))
        finally:
            processes.stop_all()
    posts = tally.latencies.get("POST", [])
    wall = tally.finished - tally.started
    return {"post_per_s": round(len(posts) / wall) if wall else 0,
            "p50_ms": measure.percentile_ms(posts, 0.50),
            "p99_ms": measure.percentile_ms(posts, 0.99),
            "requests": sum(tally.statuses.values()), "throttled_429_503": tally.throttled,
            "server_errors_5xx": tally.server_errors, "failures": tally.failures[:5],
            "peak_postgres_connections": peak.peak}
