"""What applications read: the events API (`EventsFeed`, cursor pages of event documents) and
the RFC 8936 poll feed (`PollFeed`, SETs acknowledged per application key).

Both read the outbox in position order (`store/outbox.py`), only for the tenants the key is
granted. Positions follow commit order, so a cursor never skips an event committed late.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.events.model import EVENT_TYPES, matches
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.services.set_signing import SetSigner
from scimflow.pipeline.store import outbox
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.db import is_postgres, unit_of_work
from scimflow.pipeline.store.event_tables import OutboxEvent
from scimflow.pipeline.store.feed_tables import EventFeed, EventFeedAck
from scimflow.pipeline.store.outbox import StoredEvent
from scimflow.pipeline.store.tenants import find_tenant

log = logging.getLogger(__name__)

CURSOR_PREFIX = "pos_"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# RFC 8936 lets the transmitter choose when `maxEvents` is absent, and return fewer.
DEFAULT_MAX_EVENTS = 100
MAX_EVENTS = 1000
LONG_POLL_SECONDS = 10.0
LONG_POLL_INTERVAL_SECONDS = 0.5
# Polls that may wait at once in one API process (of its 8 request threads by default).
MAX_WAITING_POLLS = 2


class FeedError(Exception):
    """A request the feed refuses; `code` is machine-readable, the message is for people."""

    status = 400
    code = "invalid_request"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidCursor(FeedError):
    code = "invalid_cursor"


class InvalidLimit(FeedError):
    code = "invalid_limit"


class UnknownEventType(FeedError):
    code = "invalid_event_type"


class TenantNotGranted(FeedError):
    status = 403
    code = "access_denied"


# --- Parameters --------------------------------------------------------------------------------


def cursor_of(position: int) -> str:
    """The opaque cursor that resumes after the event at `position`."""
    return f"{CURSOR_PREFIX}{position}"


def parse_cursor(cursor: str | None) -> int:
    """The position a cursor stands for; none given: before the oldest retained event."""
    if cursor is None:
        return 0
    digits = cursor.removeprefix(CURSOR_PREFIX)
    if cursor == digits or not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise InvalidCursor(f"{cursor!r} is not a cursor this API handed out.")
    return int(digits)


def parse_limit(limit: str | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise InvalidLimit(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}.")
    return int(limit)


def parse_types(types: str | None) -> frozenset[str] | None:
    """Comma-separated event types or patterns (`user.*`) as the types they name."""
    if types is None or not types.strip():
        return None
    named: set[str] = set()
    for pattern in (part.strip() for part in types.split(",")):
        found = {event_type for event_type in EVENT_TYPES if matches([pattern], event_type)}
        if not found:
            raise UnknownEventType(
                f"{pattern!r} names no event type; known types: {', '.join(EVENT_TYPES)}."
            )
        named |= found
    return frozenset(named)


# --- The events API ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventPage:
    data: list[dict[str, Any]]
    next_cursor: str
    has_more: bool

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "next_cursor": self.next_cursor, "has_more": self.has_more}


class EventsFeed:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list(
        self,
        grant: AppGrant,
        *,
        after: str | None = None,
        limit: str | None = None,
        types: str | None = None,
        tenant: str | None = None,
    ) -> EventPage:
        """One page of the events past `after`, in position order, each with its cursor.

        `next_cursor` resumes after the page. When the page ends the feed, it is the last
        position handed out, not the last event shown: a filtered reader then never scans the
        events it skipped again.
        """
        position, size, type_set = parse_cursor(after), parse_limit(limit), parse_types(types)
        with unit_of_work(self._sessions) as session:
            tenants = _scope(session, grant, tenant)
            # Read before the events: every position up to it is committed and will be seen.
            horizon = outbox.last_position(session)
            events = outbox.read_after(session, position, limit=size + 1, tenants=tenants,
                                       types=type_set)
        has_more = len(events) > size
        page = events[:size]
        last = page[-1].position if page else position
        next_position = last if has_more else max(last, horizon)
        return EventPage([_with_cursor(event) for event in page], cursor_of(next_position),
                         has_more)


def _with_cursor(event: StoredEvent) -> dict[str, Any]:
    return {**event.document, "cursor": cursor_of(event.position)}


def _scope(session: Session, grant: AppGrant, tenant: str | None) -> Collection[str] | None:
    """The tenant ids to read: the one asked for (name or id) if granted, else the grant's."""
    if tenant is None:
        return grant.tenants
    try:
        tenant_id = find_tenant(session, tenant).id
    except NotFound:
        if grant.tenants is not None:
            # A restricted key learns nothing about tenants outside its grant.
            raise TenantNotGranted(f"This key may not read tenant {tenant!r}.") from None
        raise FeedError(f"No tenant {tenant!r}.") from None
    if not grant.allows(tenant_id):
        raise TenantNotGranted(f"This key may not read tenant {tenant!r}.")
    return {tenant_id}


# --- The RFC 8936 poll feed ----------------------------------------------------------------------


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
                events, more = _outstanding(session, grant, max_events)
            if events or self._monotonic() >= deadline:
                return events, more
            self._sleep(self._interval)


def _settle(session: Session, grant: AppGrant, request: PollRequest, *, now: datetime) -> None:
    position = _locked_feed(session, grant.key_id, now=now)
    for jti, error in request.set_errors.items():
        log.warning("Application key %s could not process SET %s: %s %s", grant.key_id, jti,
                    error.get("err"), error.get("description", ""))
    resolved = list(request.ack) + list(request.set_errors)
    if resolved:
        _record_acks(session, grant, position, resolved)
    _advance(session, grant, position, now=now)


def _locked_feed(session: Session, key_id: str, *, now: datetime) -> int:
    """The feed's position, its row created on the first poll and locked until the commit,
    so two polls of one key settle one after the other."""
    dialect = postgresql if is_postgres(session) else sqlite
    session.execute(dialect.insert(EventFeed).values(app_key_id=key_id, position=0,
                                                     updated_at=now).on_conflict_do_nothing())
    position = session.scalar(
        select(EventFeed.position).where(EventFeed.app_key_id == key_id).with_for_update()
    )
    return int(position or 0)


def _record_acks(
    session: Session, grant: AppGrant, position: int, jtis: list[str]
) -> None:
    query = select(OutboxEvent.id).where(OutboxEvent.event_id.in_(jtis), OutboxEvent.id > position)
    if grant.tenants is not None:
        query = query.where(OutboxEvent.tenant_id.in_(list(grant.tenants)))
    rows = [{"app_key_id": grant.key_id, "event_position": found}
            for found in session.scalars(query)]
    if rows:
        dialect = postgresql if is_postgres(session) else sqlite
        session.execute(dialect.insert(EventFeedAck).values(rows).on_conflict_do_nothing())


def _acked_above(session: Session, key_id: str, position: int) -> set[int]:
    return set(session.scalars(
        select(EventFeedAck.event_position)
        .where(EventFeedAck.app_key_id == key_id, EventFeedAck.event_position > position)
    ))


def _advance(session: Session, grant: AppGrant, position: int, *, now: datetime) -> None:
    """Move the position over the acknowledged events that follow it without a gap."""
    acked = _acked_above(session, grant.key_id, position)
    if not acked:
        return
    new_position = position
    for event in outbox.read_after(session, position, limit=len(acked) + 1,
                                   tenants=grant.tenants):
        if event.position not in acked:
            break
        new_position = event.position
    if new_position == position:
        return
    session.execute(update(EventFeed).where(EventFeed.app_key_id == grant.key_id)
                    .values(position=new_position, updated_at=now))
    session.execute(delete(EventFeedAck).where(EventFeedAck.app_key_id == grant.key_id,
                                               EventFeedAck.event_position <= new_position))


def _outstanding(
    session: Session, grant: AppGrant, max_events: int
) -> tuple[list[StoredEvent], bool]:
    """Up to `max_events` events not yet acknowledged, and whether more wait."""
    position = int(session.scalar(
        select(EventFeed.position).where(EventFeed.app_key_id == grant.key_id)
    ) or 0)
    acked = _acked_above(session, grant.key_id, position)
    events = outbox.read_after(session, position, limit=max_events + len(acked) + 1,
                               tenants=grant.tenants)
    unacked = [event for event in events if event.position not in acked]
    return unacked[:max_events], len(unacked) > max_events
