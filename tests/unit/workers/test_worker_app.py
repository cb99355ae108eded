"""The worker and beat processes' composition root: `celery -A scimflow.workers.main`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.signals import worker_init, worker_process_init

from scimflow.pipeline.passwords.crypto import generate_key
from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import (
    DELIVER_DUE_TASK,
    DELIVER_TASK,
    DRAIN_TASK,
    PRUNE_TASK,
    SWEEP_TASK,
    make_celery,
)
from scimflow.workers.main import worker_app
from scimflow.workers.runtime import WorkerRuntime

REDIS = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[3]
TASKS = sorted([DELIVER_TASK, DELIVER_DUE_TASK, DRAIN_TASK, PRUNE_TASK, SWEEP_TASK])


def scimflow_tasks(app: Celery) -> list[str]:
    return sorted(name for name in app.tasks if name.startswith("scimflow."))


def test_celery_finds_the_app_with_its_tasks_and_schedule() -> None:
    probe = ("from celery.app.utils import find_app; app = find_app('scimflow.workers.main'); "
             "print(sorted(n for n in app.tasks if n.startswith('scimflow.')), "
             "sorted(app.conf.beat_schedule))")
    env = {**os.environ, "SCIMFLOW_BROKER_URL": REDIS}
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, cwd=ROOT, env=env).stdout.strip()
    assert found == f"{TASKS} ['deliver-due', 'prune', 'sweep']"


def test_the_tasks_are_registered_on_the_worker_app_only() -> None:
    app = worker_app(WorkerRuntime(Settings(broker_url=REDIS)))
    assert scimflow_tasks(app) == TASKS
    # The API's app sends drains by name: it must not carry the worker's tasks (or runtime).
    assert scimflow_tasks(make_celery(Settings(broker_url=REDIS))) == []


@dataclass
class FakeEngine:
    disposed: list[bool]

    def dispose(self, close: bool = True) -> None:
        self.disposed.append(close)


def test_a_pool_process_forgets_its_parents_database_engine() -> None:
    runtime = WorkerRuntime(Settings(broker_url=REDIS))
    worker_app(runtime)
    disposed: list[bool] = []
    runtime.__dict__.update(engine=FakeEngine(disposed), sessions="parent's", drainer="parent's")
    worker_process_init.send(sender="worker@host")
    assert disposed == [False]  # the parent's connections are left open for the parent
    assert not {"engine", "sessions", "drainer"} & set(runtime.__dict__)


@dataclass(eq=False)  # hashable, as Celery's signals need their sender to be
class FakeWorker:
    app: Any


def test_a_worker_without_the_password_key_refuses_to_start() -> None:
    app = worker_app(WorkerRuntime(Settings(broker_url=REDIS, password_key="")))
    with pytest.raises(SystemExit, match="SCIMFLOW_PASSWORD_KEY is not set: `scimflow worker`"):
        worker_init.send(sender=FakeWorker(app))


def test_a_worker_with_the_password_key_starts() -> None:
    app = worker_app(WorkerRuntime(Settings(broker_url=REDIS, password_key=generate_key())))
    responses = worker_init.send(sender=FakeWorker(app))
    assert not [response for _, response in responses if isinstance(response, Exception)]
