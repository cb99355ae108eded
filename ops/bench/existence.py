"""The existence phase: the look-up an IdP sends before every create, against a loaded tenant.

Right after the load (no manual ANALYZE: the planner has whatever statistics autovacuum
gathered by then), N `GET /Users?filter=userName eq "…"`, half of them for userNames that
exist and half for userNames that do not, at the sync's concurrency. The bare Falcon baseline
is driven with exactly the same URLs by `get_paths`, so the ratio is what the filtered
look-up costs over the framework's own GET.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.http import Connection
from scimflow.ops.bench.idp_requests import IdpRequests
from scimflow.ops.bench.load import Driver, Tally, run_closed_loop
from scimflow.ops.bench.plan import SyncPlan

KIND = "GET"
# Spreads the existing userNames over the whole key range (any stride coprime with the
# number of users would do; a large prime is coprime with every smaller count).
_STRIDE = 7919


def existence_paths(plan: SyncPlan, idp: IdpRequests, count: int) -> list[tuple[str, bool]]:
    """`count` look-ups, alternately for an existing and a missing userName: (path, exists)."""
    paths = []
    for i in range(count):
        if i % 2 == 0:
            name = plan.user_name((i // 2 * _STRIDE) % plan.users)
        else:
            name = plan.missing_user_name(i // 2)
        paths.append((idp.existence_path(name), i % 2 == 0))
    return paths


def get_paths(make_connection: Callable[[], Connection], concurrency: int,
              paths: list[tuple[str, bool]], *, check: bool) -> tuple[Tally, int]:
    """GET every path at `concurrency`; with `check`, count answers that found a missing user
    or missed an existing one. Returns the tally and that count."""
    tally = Tally()
    driver = Driver(tally)
    wrong = [0]

    async def one(connection: Connection, item: tuple[str, bool]) -> None:
        path, exists = item
        response = await driver.send(connection, KIND, "GET", path, expect=(200,))
        if check and response.status == 200:
            wrong[0] += (response.json()["totalResults"] == 1) != exists

    async def all_gets() -> None:
        tally.started = time.perf_counter()
        await run_closed_loop(make_connection, concurrency, paths, one)
        tally.finished = time.perf_counter()

    asyncio.run(all_gets())
    return tally, wrong[0]


def rate_and_latency(tally: Tally, kind: str = KIND) -> dict[str, Any]:
    latencies = tally.latencies.get(kind, [])
    wall = tally.finished - tally.started
    return {"per_s": round(len(latencies) / wall) if wall else 0,
            "p50_ms": measure.percentile_ms(latencies, 0.50),
            "p99_ms": measure.percentile_ms(latencies, 0.99),
            "requests": len(latencies)}


def existence_phase(plan: SyncPlan, idp: IdpRequests, make_connection: Callable[[], Connection],
                    concurrency: int, count: int) -> dict[str, Any]:
    tally, wrong = get_paths(make_connection, concurrency,
                             existence_paths(plan, idp, count), check=True)
    return rate_and_latency(tally) | {
        "existing": (count + 1) // 2, "missing": count // 2, "wrong_answers": wrong,
        "throttled_429_503": tally.throttled, "server_errors_5xx": tally.server_errors,
        "failures": tally.failures[:5]}
