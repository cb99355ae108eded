"""What a worker or beat process tells its operators: its log lines (pipeline/logs.py, in place
of Celery's own logging setup), the task id on every line a task logs, and its /metrics
(workers/metrics.py, which also writes the apply line of each entry a drain applied).
See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)

from scimflow.pipeline import logs
from scimflow.pipeline.settings import Settings
from scimflow.workers import metrics


def watch_process(app: Celery, settings: Settings, *, metrics_port: int) -> None:
    """Logging, task ids and /metrics on `metrics_port` (0: none) for `app`'s worker."""

    def configure(**_: object) -> None:
        # Connected at all, this handler replaces Celery's logging setup (Celery's docs,
        # "setup_logging"): the same lines, in the same format, as the API's.
        logs.configure_logging(settings)

    tokens: dict[str, Token[dict[str, Any] | None]] = {}

    def bind_task(task_id: str | None = None, sender: Any = None, **_: object) -> None:
        if task_id is not None and getattr(sender, "app", None) is app:
            tokens[task_id] = logs.bind(task_id=task_id)

    def unbind_task(task_id: str | None = None, **_: object) -> None:
        token = tokens.pop(task_id or "", None)
        if token is not None:
            logs.unbind(token)

    def serve_metrics(sender: Any = None, **_: object) -> None:
        if getattr(sender, "app", None) is app:  # not the worker of another app
            metrics.start_metrics_server(metrics_port)

    def forget_process(pid: int | None = None, **_: object) -> None:
        if pid is not None:
            metrics.mark_process_dead(pid)

    # Held strongly: the handlers are local functions, meant to live as long as the process.
    setup_logging.connect(configure, weak=False)
    task_prerun.connect(bind_task, weak=False)
    task_postrun.connect(unbind_task, weak=False)
    worker_init.connect(serve_metrics, weak=False)
    worker_process_shutdown.connect(forget_process, weak=False)
