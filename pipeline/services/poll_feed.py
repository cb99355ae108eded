"""The RFC 8936 poll feed (`PollFeed`): each application key's SETs, handed out until it
acknowledges them. See docs/EVENTS.md and docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.services.events_feed import FeedError
from scimflow.pipeline.services.set_signing import SetSigner
from scimflow.pipeline.store import event_feeds
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.outbox import StoredEvent

log = logging.getLogger(__name__)

# RFC 8936 lets the transmitter choose when `maxEvents` is absent, and return fewer.
DEFAULT_MAX_EVENTS = 100
MAX_EVENTS = 1000
LONG_POLL_SECONDS = 10.0
LONG_POLL_INTERVAL_SECONDS = 0.5
# Polls that may wait at once in one API process (of its 8 request threads by default).
MAX_WAITING_POLLS = 2


@dataclass(frozen=True, slots=True)
class PollRequest:
    """An RFC 8936 §2.4 poll: acknowledgements, errors, and what to return."""

    ack: tuple[str, ...] = ()
    set_errors: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    max_events: int = DEFAULT_MAX_EVENTS
    return_immediately: bool = False

    @classmethod
    def from_json(cls, body: object) -> PollRequest:
        if not isinstance(body, dict):
            raise FeedError("The poll request is a JSON object.")
        unknown = set(body) - {"ack", "setErrs", "maxEvents", "returnImmediately"}
        if unknown:
            raise FeedError(f"Unknown poll request member(s): {', '.join(sorted(unknown))}.")
        return cls(
            ack=_jtis(body.get("ack", [])),
            set_errors=_set_errors(body.get("setErrs", {})),
            max_events=min(_max_events(body.get("maxEvents", DEFAULT_MAX_EVENTS)), MAX_EVENTS),
            return_immediately=_flag(body.get("returnImmediately", False)),
        )


def _jtis(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(jti, str) for jti in value):
        raise FeedError("ack is an array of jti strings.")
    return tuple(value)


def _set_errors(value: object) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise FeedError("setErrs is an object of jti to {\"err\", \"description\"}.")
    errors: dict[str, dict[str, str]] = {}
    for jti, error in value.items():
        if not isinstance(error, dict) or not isinstance(error.get("err"), str) or not all(
            isinstance(text, str) for text in error.values()
        ):
            raise FeedError(f"setErrs[{jti!r}] needs an \"err\" string (and a \"description\").")
        errors[jti] = dict(error)
    return errors


def _max_events(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FeedError("maxEvents is a non-negative integer.")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise FeedError("returnImmediately is true or false.")
    return value


@dataclass(frozen=True, slots=True)
class PollResponse:
    sets: dict[str, str]
    more_available: bool

    def to_json(self) -> dict[str, Any]:
        return {"sets": self.sets, "moreAvailable": self.more_available}


class PollFeed:
    """Each application key's RFC 8936 feed. SETs handed out stay outstanding until
    acknowledged (`ack`) or reported failed (`setErrs`): an outstanding SET is handed out again
    on every poll, an acknowledged one never. `aud` of every SET is the key's id."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: SetSigner,
        *,
        clock: Clock = utc_now,
        long_poll_seconds: float = LONG_POLL_SECONDS,
        interval_seconds: float = LONG_POLL_INTERVAL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        max_waiting: int = MAX_WAITING_POLLS,
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._clock = clock
        self._long_poll_seconds = long_poll_seconds
        self._interval = interval_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        # A waiting poll holds one of the API process's request threads, which the IdPs'
        # writes need: only this many wait at once; the others answer at once.
        self._waiting = threading.BoundedSemaphore(max_waiting)

    def poll(self, grant: AppGrant, request: PollRequest) -> PollResponse:
        """Settle the acknowledgements, then answer the outstanding SETs; with nothing to
        answer and `returnImmediately` false, wait for some (long poll) without holding a
        transaction open."""
        with unit_of_work(self._sessions) as session:
            _settle(session, grant, request, now=self._clock())
        waits = (not request.return_immediately and request.max_events > 0
                 and self._waiting.acquire(blocking=False))
        try:
            events, more = self._outstanding(grant, request.max_events, wait=waits)
        finally:
            if waits:
                self._waiting.release()
        sets = {event.document["id"]: self._signer.sign(event.document, audience=grant.key_id)
                for event in events}
        return PollResponse(sets, more)


    def _outstanding(self, grant: AppGrant, max_events: int, *,
                     wait: bool) -> tuple[list[StoredEvent], bool]:
        deadline = self._monotonic() + (self._long_poll_seconds if wait else 0.0)
        while True:
            with unit_of_work(self._sessions) as session:
                events, more = event_feeds.outstanding(session, grant, max_events)
            if events or self._monotonic() >= deadline:
                return events, more
            self._sleep(self._interval)


def _settle(session: Session, grant: AppGrant, request: PollRequest, *, now: datetime) -> None:
    position = event_feeds.locked_position(session, grant.key_id, now=now)
    for jti, error in request.set_errors.items():
        log.warning("Application key %s could not process SET %s: %s %s", grant.key_id, jti,
                    error.get("err"), error.get("description", ""))
    resolved = list(request.ack) + list(request.set_errors)
    if resolved:
        event_feeds.record_acks(session, grant, position, resolved)
    event_feeds.advance(session, grant, position, now=now)
