"""Retention on the production path: beat schedules `scimflow.prune`, the task runs the pruner."""

from __future__ import annotations

from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.retention import PruneReport
from scimflow.workers.celery_app import PRUNE_TASK, make_celery
from scimflow.workers.main import worker_app
from scimflow.workers.runtime import WorkerRuntime

REDIS = "redis://127.0.0.1:6379/0"


def test_beat_prunes_every_retention_interval() -> None:
    app = make_celery(Settings(broker_url=REDIS, retention_interval_seconds=42.0))

    assert app.conf.beat_schedule["prune"] == {"task": "scimflow.prune", "schedule": 42.0}


def test_the_default_interval_is_five_minutes() -> None:
    app = make_celery(Settings(broker_url=REDIS))

    assert app.conf.beat_schedule["prune"]["schedule"] == 300.0


def test_the_prune_task_runs_the_workers_pruner_and_returns_its_counts() -> None:
    runs: list[None] = []

    def pruner() -> PruneReport:
        runs.append(None)
        return PruneReport(journal=5, outbox=2, webhook_attempts=3, dead_letters=1,
                           login_decisions=4)

    runtime = WorkerRuntime(Settings(broker_url=REDIS))
    runtime.pruner = pruner
    prune = worker_app(runtime).tasks[PRUNE_TASK]

    assert prune() == {"journal": 5, "outbox": 2, "webhook_attempts": 3, "dead_letters": 1,
                       "login_decisions": 4, "dry_run": False}
    assert len(runs) == 1
