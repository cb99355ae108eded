"""The Celery implementation of the domain's Dispatcher port."""

from __future__ import annotations

from celery import Celery

from workers.celery_app import DEFAULT_QUEUE, DRAIN_TASK, URGENT_QUEUE


class CeleryDispatcher:
    """Rings the workers by sending a drain task by name (no task module import)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        queue = URGENT_QUEUE if urgent else DEFAULT_QUEUE
        self._app.send_task(DRAIN_TASK, args=[tenant_id], queue=queue)

    def ring_later(self, tenant_id: str, seconds: float) -> None:
        self._app.send_task(DRAIN_TASK, args=[tenant_id], queue=DEFAULT_QUEUE,
                            countdown=seconds)
