"""The Celery implementation of the domain's Dispatcher port, and the one place it is built
for a process that rings the workers from outside them (the API, operator commands).
See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from celery import Celery

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.ports import Dispatcher
from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import (
    DEFAULT_QUEUE,
    DELIVER_TASK,
    DRAIN_TASK,
    EVENTS_QUEUE,
    URGENT_QUEUE,
    delays_in_whole_seconds,
    make_celery,
)
from scimflow.workers.coalesce import CoalescingDispatcher

log = logging.getLogger("scimflow.dispatch")


class CeleryDispatcher:
    """Rings the workers by sending a drain task by name (no task module import).

    A ring happens after the write committed, so it must never fail the request: when the
    broker is down the ring is logged and dropped, and the beat sweeper rings for that
    tenant's pending work once the broker is back.
    """

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._whole_seconds = delays_in_whole_seconds(app)

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        queue = URGENT_QUEUE if urgent else DEFAULT_QUEUE
        self._send(tenant_id, queue=queue)

    def ring_later(self, tenant_id: str, seconds: float) -> None:
        if self._whole_seconds:
            # Rounded up: a doorbell a fraction of a second late costs nothing, one that comes
            # early finds the work not yet due.
            seconds = max(1, math.ceil(seconds))
        self._send(tenant_id, queue=DEFAULT_QUEUE, countdown=seconds)

    def deliver(self, endpoint_id: str) -> None:
        """Ask the events workers to deliver an endpoint's events (best-effort too: beat's
        `scimflow.deliver_due` finds an endpoint whose doorbell was lost)."""
        try:
            self._app.send_task(DELIVER_TASK, args=[endpoint_id], queue=EVENTS_QUEUE)
        except Exception as ex:
            log.warning("delivery doorbell for endpoint %s not sent (%s)", endpoint_id, ex)

    def _send(self, tenant_id: str, **options: object) -> None:
        try:
            self._app.send_task(DRAIN_TASK, args=[tenant_id], **options)
        except Exception as ex:  # the broker is best-effort here, the journal is the truth
            log.warning("doorbell for tenant %s not sent (%s); the sweeper will ring", tenant_id,
                        ex)


def broker_check(settings: Settings) -> Callable[[], None]:
    """Readiness's broker probe: one connection attempt, bounded, raising Unavailable."""
    app = make_celery(settings)

    def check() -> None:
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        except Exception as ex:  # any transport's failure means the same: not ready
            raise Unavailable(f"the broker does not answer ({type(ex).__name__})",
                              retry_after=10) from ex

    return check


def broker_dispatcher(settings: Settings, *, coalesce: bool) -> Dispatcher:
    """The doorbell of a process that rings the workers through the broker.

    Coalescing sends rings from a background thread, up to a window after they were asked
    for: only a process that outlives its windows (the API) may use it. A process that exits
    right after ringing (an operator command) passes `coalesce=False`, or its ring could die
    queued with the thread.
    """
    dispatcher = CeleryDispatcher(make_celery(settings))
    return CoalescingDispatcher(dispatcher) if coalesce else dispatcher
