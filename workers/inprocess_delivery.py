"""The embedded mode's webhook delivery: the same Deliverer, on a thread of its own (a slow
receiver must never hold up the drain), woken when a drain wrote events and every
`interval` seconds for backoffs that ended. See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.services.delivery import Deliverer
from scimflow.pipeline.services.drain import DrainReport
from scimflow.pipeline.store import webhook_delivery
from scimflow.pipeline.store.db import unit_of_work

log = logging.getLogger("scimflow.webhooks")


class InProcessDelivery:
    """Delivers every endpoint with events waiting, whenever rung (and periodically)."""

    def __init__(self, sessions: sessionmaker[Session], deliverer: Deliverer, *,
                 interval: float = 5.0) -> None:
        self._sessions = sessions
        self._deliverer = deliverer
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scimflow-webhooks", daemon=True)

    def after_drain(self, report: DrainReport) -> None:
        if report.event_tenants:
            self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._deliverer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._deliver_due()
            except Unavailable:
                log.warning("database unavailable; delivering again in %.0fs", self._interval)
            except Exception:  # the thread must outlive one endpoint's bug; it is logged
                log.exception("webhook delivery failed")

    def _deliver_due(self) -> None:
        """Round after round, one task's worth per endpoint each: an endpoint with a long
        backlog or a slow receiver takes its turn, never the others'."""
        with unit_of_work(self._sessions) as session:
            endpoints = webhook_delivery.due_endpoints(session, now=utc_now())
        while endpoints and not self._stopping.is_set():
            endpoints = [endpoint_id for endpoint_id in endpoints if self._deliver(endpoint_id)]

    def _deliver(self, endpoint_id: str) -> bool:
        """Deliver one task's worth; whether more is waiting."""
        report = self._deliverer.deliver(endpoint_id)
        if report.disabled:
            log.warning("webhook endpoint %s disabled: %s", endpoint_id, report.disabled)
        return report.more
