"""Composition root of the events worker: `celery -A scimflow.workers.events_main`, run by
`scimflow events-worker` on the `scimflow.events` queue with a thread pool.

The same tasks as `workers/main.py`, over a runtime whose database pool is sized for the
threads (delivery waits on the network: a slow endpoint holds a thread, not a process).
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import EVENTS_QUEUE, make_celery, task_queues
from scimflow.workers.dispatch import CeleryDispatcher
from scimflow.workers.observe import watch_process
from scimflow.workers.runtime import WorkerRuntime
from scimflow.workers.tasks import register_tasks


def events_worker_app(runtime: WorkerRuntime) -> Celery:
    app = make_celery(runtime.settings)
    # Its own queue only: on RabbitMQ, Celery binds every queue it knows to the delayed-delivery
    # exchanges at start, and the drain queues are declared by the workers that consume them,
    # which may not have started yet.
    app.conf.task_queues = [q for q in task_queues(runtime.settings) if q.name == EVENTS_QUEUE]
    register_tasks(app, runtime, CeleryDispatcher(app))
    # The port after the workers': both may run on one host.
    port = runtime.settings.worker_metrics_port
    watch_process(app, runtime.settings, metrics_port=port + 1 if port else 0)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        globals()["app"] = events_worker_app(WorkerRuntime(Settings.from_env(), role="events"))
        return globals()["app"]
    raise AttributeError(name)
