"""Managing a tenant's webhook endpoints: add (with the SSRF checks), list, remove, disable,
enable, rotate the signing secret, replay past events, and list delivery attempts.

Delivery itself (`services/delivery.py`) only reads what is set here: the cursor (every event
at or below it is delivered), the backoff columns, `disabled_at`, the patterns, the format and
the secrets. See docs/EVENTS.md and docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import builtins
import ipaddress
import secrets as random_source
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.events.destinations import check_url, resolve_destination
from scimflow.pipeline.events.model import check_patterns
from scimflow.pipeline.events.signing import new_secret
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.store import outbox, tenants
from scimflow.pipeline.store import webhooks as store
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.webhooks import EndpointRow

FORMATS = ("json", "set")
DEFAULT_PORTS = {"http": 80, "https": 443}
ENDPOINT_PREFIX = "we_"
OPERATOR_REASON = "disabled by an operator"


class UnknownEndpoint(LookupError):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(
            f"No webhook endpoint {endpoint_id!r} (`scimflow webhook list` shows them)."
        )


class UnknownEvent(LookupError):
    """A replay from an event the outbox does not hold (never written, pruned, or another
    tenant's)."""


class UnresolvableDestination(ValueError):
    """A webhook host name that does not resolve: most likely a typo."""


@dataclass(frozen=True, slots=True)
class EndpointView:
    """An endpoint as operators see it: never its secrets.

    `backlog` counts the tenant's events past the cursor that the endpoint's patterns
    subscribe to: what delivery still has to send it.
    """

    id: str
    tenant_id: str
    tenant: str
    url: str
    events: list[str]
    format: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    cursor: int
    backlog: int
    failing_since: datetime | None
    failures: int
    next_attempt_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AddedEndpoint:
    """A new endpoint; `secret` is shown once (it is stored, but never listed)."""

    endpoint: EndpointView
    secret: str


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempted_at: datetime
    event_id: str
    event_position: int
    status_code: int | None
    latency_ms: float
    error: str | None


def new_endpoint_id() -> str:
    return ENDPOINT_PREFIX + random_source.token_hex(12)


class Webhooks:
    def __init__(
        self, sessions: sessionmaker[Session], *, allow_private: bool, clock: Clock = utc_now
    ) -> None:
        self._sessions = sessions
        self._allow_private = allow_private
        self._clock = clock

    def add(
        self, tenant: str, url: str, *, events: Sequence[str] = ("*",), format: str = "json"
    ) -> AddedEndpoint:
        """A new endpoint of the tenant (name or id). It receives the events written from now
        on; `replay` sends it older ones."""
        patterns = _checked_events(events)
        _check_format(format)
        self._check_destination(url)
        secret = new_secret()
        endpoint_id = new_endpoint_id()
        with unit_of_work(self._sessions) as session:
            owner = tenants.find_tenant(session, tenant)
            store.insert_endpoint(
                session, endpoint_id=endpoint_id, tenant_id=owner.id, url=url, events=patterns,
                format=format, secret=secret, cursor=outbox.last_position(session),
                now=self._clock(),
            )
            return AddedEndpoint(self._view(session, _found(session, endpoint_id)), secret)

    def list(self, tenant: str | None = None) -> list[EndpointView]:
        with unit_of_work(self._sessions) as session:
            tenant_id = None if tenant is None else tenants.find_tenant(session, tenant).id
            return [self._view(session, row) for row in store.list_endpoints(session, tenant_id)]

    def get(self, endpoint_id: str) -> EndpointView:
        with unit_of_work(self._sessions) as session:
            return self._view(session, _found(session, endpoint_id))

    def remove(self, endpoint_id: str) -> None:
        """Delete the endpoint and its recorded attempts; delivery to it stops."""
        with unit_of_work(self._sessions) as session:
            if not store.delete_endpoint(session, endpoint_id):
                raise UnknownEndpoint(endpoint_id)

    def disable(self, endpoint_id: str, reason: str = OPERATOR_REASON) -> EndpointView:
        """Stop delivering; the cursor stays where it is, so `enable` resumes from there."""
        return self._update(endpoint_id, disabled_at=self._clock(), disabled_reason=reason)

    def enable(self, endpoint_id: str) -> EndpointView:
        """Deliver again at once: the failures and the backoff are forgotten, the cursor is
        kept, so every event it missed while disabled is still sent."""
        return self._update(endpoint_id, disabled_at=None, disabled_reason=None, failures=0,
                            failing_since=None, next_attempt_at=None)

    def rotate_secret(self, endpoint_id: str, *, overlap_hours: float = 24) -> str:
        """A new signing secret, first in the list; the older ones keep signing for
        `overlap_hours` (never longer than they already would), so receivers can switch
        without refusing a delivery. Secrets already expired are dropped."""
        if overlap_hours < 0:
            raise ValueError("the overlap of a secret rotation cannot be negative")
        secret = new_secret()
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            current = store.locked_secrets(session, endpoint_id)
            if current is None:
                raise UnknownEndpoint(endpoint_id)
            kept = _expiring(current, now=now, until=now + timedelta(hours=overlap_hours))
            store.update_endpoint(session, endpoint_id,
                                  secrets=[{"secret": secret, "expires_at": None}, *kept])
        return secret

    def replay(self, endpoint_id: str, *, since: datetime | str) -> int:
        """Send again every event of the tenant from `since` on: a time (events written at or
        after it; a string in ISO 8601) or an event id (that event and the ones after it).

        The cursor only moves back (events not yet delivered are never skipped) and the
        backoff is cleared, so delivery resumes now. Returns how many events the endpoint
        will be sent.
        """
        start = _since(since)
        with unit_of_work(self._sessions) as session:
            found = store.locked_cursor(session, endpoint_id)
            if found is None:
                raise UnknownEndpoint(endpoint_id)
            tenant_id, patterns, cursor = found
            if isinstance(start, datetime):
                target = outbox.position_before(session, start)
            else:
                target = _event_start(session, start, tenant_id)
            cursor = min(cursor, target)
            store.update_endpoint(session, endpoint_id, cursor=cursor, next_attempt_at=None)
            return store.backlog(session, tenant_id, patterns, after=cursor)

    def deliveries(
        self, endpoint_id: str, *, limit: int = 50
    ) -> builtins.list[AttemptView]:
        """The endpoint's latest delivery attempts, newest first."""
        if limit < 1:
            raise ValueError("the number of delivery attempts to list must be at least 1")
        with unit_of_work(self._sessions) as session:
            _found(session, endpoint_id)
            rows = store.list_attempts(session, endpoint_id, limit=limit)
        return [AttemptView(row.attempted_at, row.event_id, row.event_position, row.status_code,
                            row.latency_ms, row.error) for row in rows]

    def _update(self, endpoint_id: str, **values: Any) -> EndpointView:
        with unit_of_work(self._sessions) as session:
            if not store.update_endpoint(session, endpoint_id, **values):
                raise UnknownEndpoint(endpoint_id)
            return self._view(session, _found(session, endpoint_id))

    def _view(self, session: Session, row: EndpointRow) -> EndpointView:
        pending = store.backlog(session, row.tenant_id, row.events, after=row.cursor)
        return EndpointView(
            id=row.id, tenant_id=row.tenant_id, tenant=row.tenant, url=row.url,
            events=list(row.events), format=row.format, enabled=row.disabled_at is None,
            disabled_reason=row.disabled_reason, disabled_at=row.disabled_at, cursor=row.cursor,
            backlog=pending, failing_since=row.failing_since, failures=row.failures,
            next_attempt_at=row.next_attempt_at, created_at=row.created_at,
        )

    def _check_destination(self, url: str) -> None:
        """Refuse a URL the workers must not send to: its form and any address literal
        (`check_url`), then every address its host name resolves to now. Delivery checks
        again at each connection, so a name that later resolves inward is still refused."""
        check_url(url, allow_private=self._allow_private)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if _is_address(host):
            return
        port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
        try:
            resolve_destination(host, port, allow_private=self._allow_private)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableDestination(
                f"webhook destination host {host} does not resolve ({exc}); check the URL"
            ) from exc


def _found(session: Session, endpoint_id: str) -> EndpointRow:
    row = store.find_endpoint(session, endpoint_id)
    if row is None:
        raise UnknownEndpoint(endpoint_id)
    return row


def _checked_events(events: Sequence[str]) -> list[str]:
    patterns = check_patterns(events)
    if not patterns:
        raise ValueError("an endpoint must subscribe to at least one event type ('*': all)")
    return patterns


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"webhook format {format!r} is not one of: {', '.join(FORMATS)}")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _expiring(
    secrets: Sequence[dict[str, Any]], *, now: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The older secrets, each expiring at `until` at the latest; the expired ones dropped."""
    kept = []
    for entry in secrets:
        given = entry.get("expires_at")
        expires = until if given is None else min(until, _aware(datetime.fromisoformat(given)))
        if expires > now:
            kept.append({"secret": entry["secret"], "expires_at": expires.isoformat()})
    return kept


def _since(since: datetime | str) -> datetime | str:
    """A replay's start: a moment, or an event id (any text that is not an ISO 8601 time)."""
    if isinstance(since, datetime):
        return _aware(since)
    text = since.strip()
    if not text:
        raise ValueError("a replay needs a time (ISO 8601) or an event id to start from")
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return text


def _aware(moment: datetime) -> datetime:
    """The moment in UTC, the zone of every stored time (SQLite compares the text, so a time
    with another offset would be compared wrongly); one without a zone is taken as UTC."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event_start(session: Session, event_id: str, tenant_id: str) -> int:
    """The cursor that sends `event_id` again: just before its position."""
    position = outbox.position_of(session, event_id)
    if position is None or store.event_tenant(session, event_id) != tenant_id:
        raise UnknownEvent(
            f"No event {event_id!r} of this endpoint's tenant in the outbox (never written, "
            "another tenant's, or pruned by retention), and it is not an ISO 8601 time "
            "such as 2026-01-31T12:00:00Z"
        )
    return position - 1
