"""The drain task: database blips retried in-process, longer outages through the broker, and a
drain that left work behind rings again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.services.drain import DrainReport
from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import DEFAULT_QUEUE, DRAIN_TASK, make_celery
from scimflow.workers.dispatch import CeleryDispatcher
from scimflow.workers.runtime import WorkerRuntime
from scimflow.workers.tasks import BATCHES_PER_TASK, register_tasks

REDIS = "redis://127.0.0.1:6379/0"


class FlakyDrainer:
    """Unavailable for its first `failures` calls, then drains `report`."""

    def __init__(self, failures: int, report: DrainReport | None = None) -> None:
        self.failures = failures
        self.report = report or DrainReport(applied=3)
        self.calls = 0

    def drain(
        self, max_batches: int | None = None,
        after_batch: Callable[[DrainReport], None] | None = None,
    ) -> DrainReport:
        assert max_batches == BATCHES_PER_TASK
        self.calls += 1
        if self.calls <= self.failures:
            raise Unavailable("database down", retry_after=1)
        if after_batch is not None:
            after_batch(self.report)
        return self.report


def worker(drainer: FlakyDrainer) -> tuple[Celery, list[dict[str, Any]]]:
    """A worker's app whose drains use `drainer`, and the messages they send."""
    runtime = WorkerRuntime(Settings(broker_url=REDIS))
    runtime.drainer = drainer  # type: ignore[assignment]
    app = make_celery(runtime.settings)
    sent: list[dict[str, Any]] = []
    app.send_task = lambda name, **options: sent.append({"name": name, **options})
    register_tasks(app, runtime, CeleryDispatcher(app))
    return app, sent


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The in-process retry's pauses, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", slept.append)
    return slept


def test_a_short_database_blip_is_retried_in_process(pauses: list[float]) -> None:
    drainer = FlakyDrainer(failures=2)
    app, _ = worker(drainer)
    result = app.tasks[DRAIN_TASK].apply(args=["acme"])
    assert result.get() == {"applied": 3, "postponed": 0, "dead": 0}
    assert drainer.calls == 3
    assert pauses == [0.2, 0.4]


@pytest.mark.parametrize(("retries", "longest_delay"), [(0, 1), (3, 8), (5, 32), (6, 60), (40, 60)])
def test_a_longer_outage_is_retried_through_the_broker_with_capped_jittered_backoff(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch, retries: int, longest_delay: int,
) -> None:
    drainer = FlakyDrainer(failures=3)  # more than the in-process retry absorbs
    app, _ = worker(drainer)
    task = app.tasks[DRAIN_TASK]
    jitter_bounds: list[int] = []

    def longest_jitter(bound: int) -> int:
        jitter_bounds.append(bound)
        return bound - 1

    monkeypatch.setattr("celery.utils.time.random.randrange", longest_jitter)
    delays: list[float] = []
    broker_retry = task.retry

    def recorded_retry(**options: Any) -> Any:
        delays.append(options["countdown"])
        return broker_retry(**options)

    monkeypatch.setattr(task, "retry", recorded_retry)
    # Run eagerly, a retry runs again at once: the delay is the one it would wait for.
    result = task.apply(args=["acme"], retries=retries)
    assert result.get() == {"applied": 3, "postponed": 0, "dead": 0}
    assert drainer.calls == 4
    assert delays == [longest_delay]
    assert jitter_bounds == [longest_delay + 1]  # drawn anywhere from 0 to the longest delay


def test_the_broker_retries_a_drain_for_as_long_as_the_outage_lasts(
    pauses: list[float],
) -> None:
    drainer = FlakyDrainer(failures=3)
    app, _ = worker(drainer)
    result = app.tasks[DRAIN_TASK].apply(args=["acme"], retries=10_000)
    assert result.get() == {"applied": 3, "postponed": 0, "dead": 0}
    assert drainer.calls == 4


def test_a_drain_that_left_work_rings_now_and_when_the_postponed_work_is_due() -> None:
    report = DrainReport(applied=1, more_waiting=True, retry_in=2.5)
    app, sent = worker(FlakyDrainer(failures=0, report=report))
    app.tasks[DRAIN_TASK].apply(args=["acme"]).get()
    assert sent == [
        {"name": DRAIN_TASK, "args": ["acme"], "queue": DEFAULT_QUEUE},
        {"name": DRAIN_TASK, "args": ["acme"], "queue": DEFAULT_QUEUE, "countdown": 2.5},
    ]


def test_a_drain_that_emptied_the_journal_rings_no_one() -> None:
    app, sent = worker(FlakyDrainer(failures=0))
    app.tasks[DRAIN_TASK].apply(args=["acme"]).get()
    assert sent == []
