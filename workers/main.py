"""Composition root of the worker and beat processes: `celery -A scimflow.workers.main`.

`app` is built on first access (Celery looks it up right after importing this module), so
importing `worker_app` builds nothing. See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from scimflow.pipeline.passwords.setup import require_password_key
from scimflow.pipeline.settings import ConfigError, Settings
from scimflow.workers.celery_app import make_celery
from scimflow.workers.dispatch import CeleryDispatcher
from scimflow.workers.observe import watch_process
from scimflow.workers.runtime import WorkerRuntime
from scimflow.workers.tasks import register_tasks


def worker_app(runtime: WorkerRuntime) -> Celery:
    app = make_celery(runtime.settings)
    # Drains ring again through the app they run in: a worker rings once per task, so no
    # coalescing, and `ring_later` needs the Celery dispatcher itself.
    register_tasks(app, runtime, CeleryDispatcher(app))
    _watch_worker_lifecycle(app, runtime)
    watch_process(app, runtime.settings, metrics_port=runtime.settings.worker_metrics_port)
    return app


def _watch_worker_lifecycle(app: Celery, runtime: WorkerRuntime) -> None:
    def require_password_key_at_start(sender: Any = None, **_: object) -> None:
        if getattr(sender, "app", None) is not app:
            return  # the worker of another app built in this process
        # A worker without the key would dead-letter every password it meets: refuse to start.
        # Celery logs and swallows an Exception raised by a handler; SystemExit ends the worker.
        try:
            require_password_key(runtime.settings, "`scimflow worker`")
        except ConfigError as ex:
            raise SystemExit(f"error: {ex}") from ex

    def reset_after_fork(**_: object) -> None:
        runtime.after_fork()

    # Held strongly: the handlers are local functions, meant to live as long as the process.
    worker_init.connect(require_password_key_at_start, weak=False)
    worker_process_init.connect(reset_after_fork, weak=False)


def __getattr__(name: str) -> Any:
    if name == "app":
        globals()["app"] = worker_app(WorkerRuntime(Settings.from_env()))
        return globals()["app"]
    raise AttributeError(name)
