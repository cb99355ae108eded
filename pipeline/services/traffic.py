"""Remembering, per API process, which IdP each tenant's requests come from and how many 429s
it was sent, and writing that down in one short transaction every few seconds at most.

The request path only touches a dict under a lock; the first observation after a flush arms
one timer thread that flushes `flush_seconds` later, so the tail of a burst is written even
when no request follows it. A flush that fails keeps its counts for the next one.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.idp_dialects import dialect_of
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.store import traffic
from scimflow.pipeline.store.db import unit_of_work

log = logging.getLogger(__name__)

# 429 counts are kept this long (the console shows the last hour).
REFUSALS_KEPT = timedelta(days=1)
# A tenant's IdP is written again this often even when unchanged, to show it is current.
DIALECT_REFRESH = timedelta(hours=1)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class TrafficRecorder:
    def __init__(self, sessions: sessionmaker[Session], *, flush_seconds: float = 5.0,
                 clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._refused: Counter[tuple[str, datetime]] = Counter()
        self._new_dialects: dict[str, str] = {}
        # What this process last wrote per tenant, and when: unchanged agents cost nothing.
        self._written: dict[str, tuple[str, datetime]] = {}
        self._timer: threading.Timer | None = None

    def observe(self, tenant_id: str, user_agent: str | None, *, refused: bool) -> None:
        """One SCIM request of the tenant, answered 429 or not (the request path: no I/O)."""
        name = dialect_of(user_agent)
        now = self._clock()
        with self._lock:
            if refused:
                self._refused[(tenant_id, minute_of(now))] += 1
            if name is not None and self._dialect_is_news(tenant_id, name, now):
                self._new_dialects[tenant_id] = name
            if (self._refused or self._new_dialects) and self._timer is None:
                self._arm()

    def flush(self) -> None:
        """Write what was observed since the last flush (tests and shutdown call it too)."""
        with self._lock:
            self._timer = None
            refused, self._refused = self._refused, Counter()
            dialects, self._new_dialects = self._new_dialects, {}
        if not refused and not dialects:
            return
        now = self._clock()
        try:
            with unit_of_work(self._sessions) as session:
                traffic.record_dialects(session, dialects, now=now)
                traffic.add_refusals(session, refused)
                traffic.forget_refusals_before(session, now - REFUSALS_KEPT)
        except Exception:
            log.warning("could not record tenant traffic; keeping it for the next flush",
                        exc_info=True)
            self._keep(refused, dialects)
            return
        with self._lock:
            for tenant_id, name in dialects.items():
                self._written[tenant_id] = (name, now)

    def _dialect_is_news(self, tenant_id: str, name: str, now: datetime) -> bool:
        if self._new_dialects.get(tenant_id) == name:
            return False
        written = self._written.get(tenant_id)
        return written is None or written[0] != name or now - written[1] >= DIALECT_REFRESH

    def _keep(self, refused: Counter[tuple[str, datetime]], dialects: dict[str, str]) -> None:
        with self._lock:
            self._refused.update(refused)
            for tenant_id, name in dialects.items():
                self._new_dialects.setdefault(tenant_id, name)
            if self._timer is None:
                self._arm()

    def _arm(self) -> None:
        # Called under the lock. A daemon thread: a stopping process never waits for it.
        self._timer = threading.Timer(self._flush_seconds, self.flush)
        self._timer.daemon = True
        self._timer.start()
