"""Doorbell coalescing: at most one drain message per tenant per short window, sent off-thread.

During an initial sync one IdP may send two thousand writes a second; a message for each would
cost every request a broker round trip and flood the queue with drains that find nothing left.
See docs/ARCHITECTURE.md ("Absorbing a large initial sync").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from scimflow.pipeline.ports import Dispatcher

log = logging.getLogger("scimflow.dispatch")


# A lone write is rung at once; the window only spaces out the rings of a burst. A quarter of
# a second costs a sync nothing (a busy drain re-rings itself) and keeps publishing, which costs
# about a millisecond of API CPU per message with its task-sent event, to a few per second.
WINDOW_SECONDS = 0.25


class CoalescingDispatcher:
    def __init__(
        self,
        inner: Dispatcher,
        *,
        window_seconds: float = WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        start_thread: bool = True,
    ) -> None:
        self._inner = inner
        self._window = window_seconds
        self._monotonic = monotonic
        self._last_sent: dict[str, float] = {}
        self._waiting: set[str] = set()
        self._urgent: set[str] = set()
        self._changed = threading.Condition()
        if start_thread:
            threading.Thread(target=self._run, name="scimflow-doorbell", daemon=True).start()

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        """Note that the tenant has work; never blocks on the broker."""
        with self._changed:
            pending = self._urgent if urgent else self._waiting
            if tenant_id in pending:
                return  # the sender already knows, and has a timer for it
            pending.add(tenant_id)
            # Woken only for news: waking it for every request of a sync costs each request a
            # thread switch for nothing.
            self._changed.notify()

    def flush(self) -> float | None:
        """Send what is due now; return how long until the next ring is due (None: nothing)."""
        with self._changed:
            urgent, self._urgent = self._urgent, set()
            due, later = self._split_due()
        for tenant_id in urgent:
            self._send(tenant_id, urgent=True)
        for tenant_id in due:
            self._send(tenant_id, urgent=False)
        return later

    def _split_due(self) -> tuple[list[str], float | None]:
        now = self._monotonic()
        due = [t for t in self._waiting if now - self._last_sent.get(t, -self._window)
               >= self._window]
        for tenant_id in due:
            self._waiting.discard(tenant_id)
            self._last_sent[tenant_id] = now
        waits = [self._window - (now - self._last_sent[t]) for t in self._waiting]
        return due, min(waits) if waits else None

    def _send(self, tenant_id: str, *, urgent: bool) -> None:
        try:
            self._inner.ring(tenant_id, urgent=urgent)
        except Exception:  # the thread must outlive a broker failure; the sweeper re-rings
            log.exception("doorbell for tenant %s failed", tenant_id)

    def _run(self) -> None:
        while True:
            wait = self.flush()
            with self._changed:
                if not self._urgent and (wait is not None or not self._waiting):
                    self._changed.wait(timeout=wait)
