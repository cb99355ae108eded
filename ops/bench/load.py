"""Closed-loop load: C virtual users, each on its own keep-alive connection.

Every request's latency is recorded; `429`/`503` are honoured like an IdP honours them (wait
`Retry-After`, send the same request again) and counted; any other failure is counted and
kept, never retried silently.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scimflow.ops.bench.http import Connection, Response

Step = Callable[[Connection, Any], Awaitable[None]]


@dataclass
class Tally:
    """What one phase of load produced."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    throttled: int = 0
    failures: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def record(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def count(self, kind: str) -> int:
        return len(self.latencies.get(kind, []))

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


class Driver:
    """Sends requests for one phase and keeps the tally."""

    def __init__(self, tally: Tally, *, max_retry_after: float = 60.0) -> None:
        self.tally = tally
        self._max_retry_after = max_retry_after

    async def send(
        self, connection: Connection, kind: str, method: str, path: str, *, body: Any = None,
        expect: Iterable[int] = (200, 201, 204),
    ) -> Response:
        while True:
            started = time.perf_counter()
            response = await connection.request(method, path, body)
            self.tally.statuses[response.status] += 1
            if response.status in (429, 503):
                self.tally.throttled += 1
                await asyncio.sleep(self._retry_after(response))
                continue
            self.tally.record(kind, time.perf_counter() - started)
            if response.status not in tuple(expect):
                self.tally.failures.append(
                    f"{method} {path} -> {response.status} {response.body[:200]!r}"
                )
            return response

    def _retry_after(self, response: Response) -> float:
        try:
            return min(float(response.headers.get("retry-after", "1")), self._max_retry_after)
        except ValueError:
            return 1.0


async def run_closed_loop(
    make_connection: Callable[[], Connection], concurrency: int, items: Iterable[Any],
    step: Step,
) -> None:
    """Run `step` for every item, `concurrency` at a time, each worker on one connection."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def virtual_user() -> None:
        connection = make_connection()
        try:
            while not queue.empty():
                await step(connection, queue.get_nowait())
        finally:
            await connection.close()

    await asyncio.gather(*(virtual_user() for _ in range(concurrency)))
