"""Is the pipeline moving? Heartbeats written by workers, judged against the pending work.

The API acknowledges whether or not any worker runs, so without this a deployment whose workers
(or broker) are down would keep answering `201` while nothing applies.
See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.store import heartbeats
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.migrate import current_revision, head_revision

log = logging.getLogger(__name__)

# Workers beat at most this often: one tiny upsert per process, never a contended row.
BEAT_EVERY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Liveness:
    """The pipeline's heartbeats and its oldest due work, as ages in seconds (None: never)."""

    last_drain_seconds: float | None
    last_sweep_seconds: float | None
    oldest_due_seconds: float | None
    stalled: bool

    def describe(self) -> str:
        if not self.stalled:
            return "pipeline moving"
        since = "no worker has ever drained" if self.last_drain_seconds is None else (
            f"no worker has drained for {self.last_drain_seconds:.0f} s"
        )
        return (f"pipeline stalled: work has waited {self.oldest_due_seconds:.0f} s and {since}"
                " (are `scimflow worker` and the broker running?)")

    def as_dict(self) -> dict[str, float | bool | None]:
        return {
            "stalled": self.stalled,
            "last_drain_seconds": self.last_drain_seconds,
            "last_sweep_seconds": self.last_sweep_seconds,
            "oldest_due_seconds": self.oldest_due_seconds,
        }


def assess(session: Session, *, now: datetime, stall_seconds: float) -> Liveness:
    beats = heartbeats.last_beats(session)
    last_drain = _age(now, beats.get(heartbeats.DRAIN))
    last_sweep = _age(now, beats.get(heartbeats.SWEEP))
    oldest_due: float | None = None
    if last_drain is None or last_drain > stall_seconds:
        # Only then can it be stalled; a moving pipeline costs this check one primary-key read.
        since = heartbeats.due_pending_since(
            session, now=now, before=now - timedelta(seconds=stall_seconds)
        )
        oldest_due = _age(now, since)
    return Liveness(last_drain, last_sweep, oldest_due, stalled=oldest_due is not None)


def _age(now: datetime, at: datetime | None) -> float | None:
    if at is None:
        return None
    return round((now - at).total_seconds(), 1)


class Readiness:
    """`/readyz`: the database answers at the schema this scimflow needs, the pipeline is not
    stalled, and (for processes that ring through one) the broker answers."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        stall_seconds: float,
        clock: Callable[[], datetime],
        broker_check: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._broker_check = broker_check
        self._head = head_revision()

    def __call__(self) -> None:
        with unit_of_work(self._sessions) as session:
            revision = current_revision(session.connection())
            liveness = assess(session, now=self._clock(), stall_seconds=self._stall_seconds)
        if revision != self._head:
            # A rolling deploy's new processes wait for `scimflow migrate`; old ones for their
            # replacement: neither serves a schema it was not written for.
            raise Unavailable(f"the database schema is at {revision or 'nothing'}, this"
                              f" scimflow needs {self._head}: run `scimflow migrate`",
                              retry_after=30)
        if liveness.stalled:
            raise Unavailable(liveness.describe(), retry_after=30)
        if self._broker_check is not None:
            self._broker_check()


class Pulse:
    """Records one kind of heartbeat, at most every BEAT_EVERY_SECONDS per process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        *,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._name = name
        self._clock = clock
        self._monotonic = monotonic
        self._last: float | None = None

    def beat(self) -> None:
        now = self._monotonic()
        if self._last is not None and now - self._last < BEAT_EVERY_SECONDS:
            return
        try:
            with unit_of_work(self._sessions) as session:
                heartbeats.record(session, self._name, self._clock())
        except Unavailable:
            log.warning("could not record the %s heartbeat (database unavailable)", self._name)
            return
        self._last = now
