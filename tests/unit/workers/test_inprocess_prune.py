"""The embedded worker prunes as beat does: at start, then every `prune_every` seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.services.drain import DrainReport
from scimflow.pipeline.store.retention import PruneReport
from scimflow.workers.inprocess import InProcessWorker


class IdleDrainer:
    def drain(self, **_: object) -> DrainReport:
        return DrainReport()


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CountingPruner:
    runs: int = 0
    fail_with: Exception | None = None

    def __call__(self) -> PruneReport:
        self.runs += 1
        if self.fail_with is not None:
            raise self.fail_with
        return PruneReport(journal=1)


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def worker(pruner: CountingPruner, clock: Clock) -> InProcessWorker:
    return InProcessWorker(IdleDrainer(), idle_seconds=0.01,  # type: ignore[arg-type]
                           pruner=pruner, prune_every=300.0, clock=clock)


def test_prunes_at_start_then_once_per_interval() -> None:
    pruner, clock = CountingPruner(), Clock()
    embedded = worker(pruner, clock)
    embedded.start()
    try:
        assert eventually(lambda: pruner.runs == 1)
        time.sleep(0.1)  # many idle loops, the clock still before the interval
        assert pruner.runs == 1
        clock.now += 300.0
        assert eventually(lambda: pruner.runs == 2)
        time.sleep(0.1)
        assert pruner.runs == 2
    finally:
        embedded.stop()


def test_a_failed_prune_leaves_the_worker_draining_and_waits_for_the_next_interval() -> None:
    pruner, clock = CountingPruner(fail_with=Unavailable("down", retry_after=5)), Clock()
    embedded = worker(pruner, clock)
    embedded.start()
    try:
        assert eventually(lambda: pruner.runs == 1)
        time.sleep(0.1)
        assert pruner.runs == 1
        pruner.fail_with = RuntimeError("a bug")
        clock.now += 300.0
        assert eventually(lambda: pruner.runs == 2)
        clock.now += 300.0
        assert eventually(lambda: pruner.runs == 3)  # the thread survived the bug
    finally:
        embedded.stop()

