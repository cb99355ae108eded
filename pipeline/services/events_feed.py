"""What applications read: the events API (`EventsFeed`, cursor pages of event documents);
the RFC 8936 poll feed is `poll_feed.py`.

Both read the outbox in position order (`store/outbox.py`), only for the tenants the key is
granted. Positions follow commit order, so a cursor never skips an event committed late.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.events.model import EVENT_TYPES, matches
from scimflow.pipeline.store import outbox
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.outbox import StoredEvent
from scimflow.pipeline.store.tenants import find_tenant

log = logging.getLogger(__name__)

CURSOR_PREFIX = "pos_"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


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
