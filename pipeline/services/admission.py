"""Admission control: refuse writes early, with an honest `Retry-After`, instead of drowning.

The per-tenant backlog limit is high enough to absorb a whole initial sync, low enough that one
tenant cannot queue unbounded work; the in-flight cap keeps one IdP's 64 parallel connections
from occupying every thread and pooled connection; the jitter keeps a whole IdP from coming back
in the same second. See docs/ARCHITECTURE.md ("Absorbing a large initial sync").
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import TooManyRequests
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.store import journal
from scimflow.pipeline.store.db import unit_of_work

MIN_RETRY_AFTER, MAX_RETRY_AFTER = 1, 300


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    tenant_backlog: int = 50_000
    global_backlog: int = 250_000
    tenant_in_flight: int = 48
    refresh_seconds: float = 0.5
    # Drain rate assumed before any has been measured (entries/s).
    assumed_drain_rate: float = 500.0


@dataclass(slots=True)
class BacklogSnapshot:
    per_tenant: dict[str, int] = field(default_factory=dict)
    total: int = 0
    drain_rate: float = 0.0  # entries applied per second, recently
    taken_at: float = -math.inf


class Admission:
    """Decides, per write, whether to accept it now."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        limits: AdmissionLimits | None = None,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        self._limits = limits or AdmissionLimits()
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng
        self._snapshot = BacklogSnapshot()
        self._refreshing = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self._in_flight_lock = threading.Lock()

    @contextmanager
    def admit(self, tenant_id: str) -> Iterator[None]:
        """Hold an in-flight slot for one write of the tenant, or raise TooManyRequests."""
        self._check_backlog(tenant_id)
        with self._in_flight_lock:
            if self._in_flight[tenant_id] >= self._limits.tenant_in_flight:
                raise TooManyRequests(
                    "Too many concurrent writes for this tenant.", retry_after=self._jittered(1)
                )
            self._in_flight[tenant_id] += 1
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight[tenant_id] -= 1

    def snapshot(self) -> BacklogSnapshot:
        """The current backlog figures (refreshed when stale)."""
        if self._monotonic() - self._snapshot.taken_at >= self._limits.refresh_seconds:
            self._refresh()
        return self._snapshot

    def _check_backlog(self, tenant_id: str) -> None:
        snapshot = self.snapshot()
        tenant_excess = snapshot.per_tenant.get(tenant_id, 0) - self._limits.tenant_backlog
        global_excess = snapshot.total - self._limits.global_backlog
        excess = max(tenant_excess, global_excess)
        if excess < 0:
            return
        rate = snapshot.drain_rate or self._limits.assumed_drain_rate
        # Long enough for the workers to drain the excess plus a tenth of the limit, so the
        # IdP does not come back to a backlog that is still full.
        wait = (excess + self._limits.tenant_backlog / 10) / rate
        raise TooManyRequests(
            f"{snapshot.per_tenant.get(tenant_id, 0)} changes are waiting to be applied; "
            "retry after the indicated delay.",
            retry_after=self._jittered(wait),
        )

    def _jittered(self, seconds: float) -> int:
        jittered = seconds * (1 + self._rng() / 4)
        return max(MIN_RETRY_AFTER, min(MAX_RETRY_AFTER, math.ceil(jittered)))

    def _refresh(self) -> None:
        # One thread refreshes; the others keep using the previous snapshot meanwhile.
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            with unit_of_work(self._sessions) as session:
                per_tenant = journal.backlog_by_tenant(session)
                rate = journal.recent_apply_rate(session, now=self._clock())
            self._snapshot = BacklogSnapshot(
                per_tenant, sum(per_tenant.values()), rate, self._monotonic()
            )
        finally:
            self._refreshing.release()
