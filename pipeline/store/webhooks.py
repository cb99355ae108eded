"""The SQL of managing webhook endpoints: create, list, remove, disable and enable them, move
their cursor back for a replay, rotate their secrets, list their delivery attempts.
The delivery loop's own SQL lives in `webhook_delivery.py`. See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, or_, select, true, update
from sqlalchemy.orm import Session

from scimflow.pipeline.store.event_tables import OutboxEvent, WebhookAttempt, WebhookEndpoint
from scimflow.pipeline.store.models import Tenant


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """An endpoint as stored, with its tenant's name; never its secrets."""

    id: str
    tenant_id: str
    tenant: str
    url: str
    events: list[str]
    format: str
    disabled_reason: str | None
    disabled_at: datetime | None
    cursor: int
    failing_since: datetime | None
    failures: int
    next_attempt_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRow:
    attempted_at: datetime
    event_id: str
    event_position: int
    status_code: int | None
    latency_ms: float
    error: str | None


_LISTED = (
    WebhookEndpoint.id, WebhookEndpoint.tenant_id, Tenant.name, WebhookEndpoint.url,
    WebhookEndpoint.event_types, WebhookEndpoint.format, WebhookEndpoint.disabled_reason,
    WebhookEndpoint.disabled_at, WebhookEndpoint.cursor, WebhookEndpoint.failing_since,
    WebhookEndpoint.failures, WebhookEndpoint.next_attempt_at, WebhookEndpoint.created_at,
)


def insert_endpoint(
    session: Session, *, endpoint_id: str, tenant_id: str, url: str, events: Sequence[str],
    format: str, secret: str, cursor: int, now: datetime,
) -> None:
    session.add(WebhookEndpoint(
        id=endpoint_id, tenant_id=tenant_id, url=url, event_types=list(events), format=format,
        secrets=[{"secret": secret, "expires_at": None}], created_at=now, cursor=cursor,
        failures=0,
    ))
    session.flush()


def find_endpoint(session: Session, endpoint_id: str) -> EndpointRow | None:
    row = session.execute(_listing().where(WebhookEndpoint.id == endpoint_id)).first()
    return None if row is None else EndpointRow(*row)


def list_endpoints(session: Session, tenant_id: str | None = None) -> list[EndpointRow]:
    query = _listing()
    if tenant_id is not None:
        query = query.where(WebhookEndpoint.tenant_id == tenant_id)
    rows = session.execute(query.order_by(Tenant.name, WebhookEndpoint.created_at,
                                          WebhookEndpoint.id))
    return [EndpointRow(*row) for row in rows]


def _listing() -> Any:
    return select(*_LISTED).join(Tenant, Tenant.id == WebhookEndpoint.tenant_id)


def subscribed(patterns: Sequence[str]) -> ColumnElement[bool]:
    """The SQL form of `events.model.matches`: the outbox rows an endpoint subscribed to."""
    conditions: list[ColumnElement[bool]] = []
    for pattern in patterns:
        if pattern == "*":
            return true()
        if pattern.endswith(".*"):
            conditions.append(OutboxEvent.event_type.startswith(pattern[:-1], autoescape=True))
        else:
            conditions.append(OutboxEvent.event_type == pattern)
    return or_(*conditions) if conditions else false()


def backlog(session: Session, tenant_id: str, patterns: Sequence[str], *, after: int) -> int:
    """How many of the tenant's events past position `after` the patterns subscribe to."""
    return int(session.scalar(
        select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.tenant_id == tenant_id, OutboxEvent.id > after, subscribed(patterns)
        )
    ) or 0)


def delete_endpoint(session: Session, endpoint_id: str) -> bool:
    """Delete the endpoint and its recorded attempts; False when there was no such endpoint."""
    result = session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def update_endpoint(session: Session, endpoint_id: str, **values: Any) -> bool:
    """Set these columns of the endpoint; False when there is no such endpoint."""
    result = session.execute(
        update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def locked_secrets(session: Session, endpoint_id: str) -> list[dict[str, Any]] | None:
    """The endpoint's secrets, its row locked until the commit, so two rotations at once
    cannot each drop the other's new secret (None: no such endpoint)."""
    return session.scalar(
        select(WebhookEndpoint.secrets).where(WebhookEndpoint.id == endpoint_id).with_for_update()
    )


def locked_cursor(session: Session, endpoint_id: str) -> tuple[str, list[str], int] | None:
    """The endpoint's tenant, patterns and cursor, its row locked until the commit."""
    row = session.execute(
        select(WebhookEndpoint.tenant_id, WebhookEndpoint.event_types, WebhookEndpoint.cursor)
        .where(WebhookEndpoint.id == endpoint_id).with_for_update()
    ).first()
    return None if row is None else (row[0], list(row[1]), int(row[2]))


def event_tenant(session: Session, event_id: str) -> str | None:
    """The tenant whose event this is (None: no such event in the outbox)."""
    return session.scalar(select(OutboxEvent.tenant_id).where(OutboxEvent.event_id == event_id))


def list_attempts(session: Session, endpoint_id: str, *, limit: int) -> list[AttemptRow]:
    """The endpoint's delivery attempts, newest first."""
    rows = session.execute(
        select(WebhookAttempt.attempted_at, WebhookAttempt.event_id,
               WebhookAttempt.event_position, WebhookAttempt.status_code,
               WebhookAttempt.latency_ms, WebhookAttempt.error)
        .where(WebhookAttempt.endpoint_id == endpoint_id)
        .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
        .limit(limit)
    )
    return [AttemptRow(*row) for row in rows]
