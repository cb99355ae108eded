"""The embedded mode's worker: the same Drainer, on a thread, rung by an Event instead of a Celery
message. Its idle timeout doubles as the sweeper, and with a pruner it prunes between drains
(at start, then every `prune_every` seconds). See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.services.drain import Drainer, DrainReport
from scimflow.workers.metrics import report_batch
from scimflow.workers.runtime import Pruner

log = logging.getLogger("scimflow.worker")


class InProcessWorker:
    """Drains the journal on a background thread whenever it is rung (and periodically)."""

    def __init__(
        self,
        drainer: Drainer,
        *,
        idle_seconds: float = 5.0,
        pruner: Pruner | None = None,
        prune_every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        after_drain: Callable[[DrainReport], None] | None = None,
    ) -> None:
        self._drainer = drainer
        # Told of each drain (the embedded delivery is woken when it wrote events).
        self._after_drain = after_drain
        self._idle_seconds = idle_seconds
        self._pruner = pruner
        self._prune_every = prune_every
        self._clock = clock
        self._next_prune = clock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scimflow-worker", daemon=True)

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        timeout = self._idle_seconds
        while not self._stopping.is_set():
            self._wake.wait(timeout)
            self._wake.clear()
            timeout = self._drain_all()
            self._prune_when_due()

    def _drain_all(self) -> float:
        """Drain everything ready; return how long to sleep before looking again."""
        try:
            report = self._drainer.drain(after_batch=report_batch)
        except Unavailable:
            log.warning("database unavailable; retrying in %.0fs", self._idle_seconds)
            return self._idle_seconds
        except Exception:  # the thread must survive a bug in one batch; it is logged
            log.exception("drain failed")
            return self._idle_seconds
        if self._after_drain is not None:
            self._after_drain(report)
        if report.applied or report.postponed or report.dead:
            log.info("applied=%d postponed=%d dead=%d", report.applied, report.postponed,
                     report.dead)
        if report.retry_in is not None:
            return min(self._idle_seconds, max(report.retry_in, 0.05))
        return self._idle_seconds

    def _prune_when_due(self) -> None:
        if self._pruner is None or self._clock() < self._next_prune:
            return
        self._next_prune = self._clock() + self._prune_every
        try:
            report = self._pruner()
        except Unavailable:
            log.warning("database unavailable; pruning again in %.0fs", self._prune_every)
            return
        except Exception:  # as for a drain: logged, and the thread lives on
            log.exception("pruning failed")
            return
        if report.journal or report.outbox or report.dead_letters:
            log.info("pruned journal=%d outbox=%d dead_letters=%d",
                     report.journal, report.outbox, report.dead_letters)
