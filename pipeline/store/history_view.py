"""The operator view of what happened to resources: a resource's journal entries and what they
waited for, the events raised for it, the login decisions about it; dead letters and webhook
delivery attempts across tenants. Every list is bounded.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from scimflow.pipeline.store.app_tables import LoginDecision
from scimflow.pipeline.store.event_tables import OutboxEvent, WebhookAttempt, WebhookEndpoint
from scimflow.pipeline.store.models import (
    AcknowledgedRow,
    DeadLetter,
    JournalEntry,
    JournalWait,
    Tenant,
)
from scimflow.pipeline.store.overview import unsettled

# --- A resource's history --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalLine:
    seq: int
    resource_type: str
    command: dict[str, Any]
    status: str
    attempts: int
    request_id: str
    acknowledged_at: datetime
    applied_at: datetime | None
    last_error: str | None


def journal_of(session: Session, tenant_id: str, resource_id: str, *, limit: int
               ) -> list[JournalLine]:
    """The resource's last `limit` journal entries, oldest first (`ix_journal_resource`)."""
    rows = session.execute(
        select(JournalEntry.seq, JournalEntry.resource_type, JournalEntry.command,
               JournalEntry.status, JournalEntry.attempts, JournalEntry.request_id,
               JournalEntry.created_at, JournalEntry.applied_at, JournalEntry.last_error)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.resource_id == resource_id)
        .order_by(JournalEntry.seq.desc()).limit(limit)
    )
    return [JournalLine(*row) for row in reversed(list(rows))]


def waits_of(session: Session, seqs: Collection[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    if seqs:
        rows = session.execute(select(JournalWait.seq, JournalWait.resource_id)
                               .where(JournalWait.seq.in_(list(seqs)))
                               .order_by(JournalWait.seq, JournalWait.resource_id))
        for seq, resource_id in rows:
            found.setdefault(seq, []).append(resource_id)
    return found


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    id: int
    journal_seq: int
    tenant_id: str
    tenant_name: str
    resource_id: str
    resource_type: str
    command: dict[str, Any]
    reason: str
    created_at: datetime
    replayed_at: datetime | None
    discarded_at: datetime | None


_DEAD_LETTER_COLUMNS = (
    DeadLetter.id, DeadLetter.journal_seq, DeadLetter.tenant_id,
    func.coalesce(Tenant.name, DeadLetter.tenant_id), DeadLetter.resource_id,
    func.coalesce(JournalEntry.resource_type, literal_column("''", String)),
    JournalEntry.command, DeadLetter.reason, DeadLetter.created_at, DeadLetter.replayed_at,
    DeadLetter.discarded_at,
)


def dead_letter_records(
    session: Session, *, tenant_id: str | None = None, seqs: Collection[int] | None = None,
    ids: Collection[int] | None = None, include_settled: bool = True, limit: int = 200,
) -> list[DeadLetterRecord]:
    """Dead letters with their tenant and command, newest first."""
    statement = (
        select(*_DEAD_LETTER_COLUMNS)
        .outerjoin(Tenant, Tenant.id == DeadLetter.tenant_id)
        .outerjoin(JournalEntry, JournalEntry.seq == DeadLetter.journal_seq)
    )
    if tenant_id is not None:
        statement = statement.where(DeadLetter.tenant_id == tenant_id)
    if seqs is not None:
        statement = statement.where(DeadLetter.journal_seq.in_(list(seqs)))
    if ids is not None:
        statement = statement.where(DeadLetter.id.in_(list(ids)))
    if not include_settled:
        statement = statement.where(unsettled())
    rows = session.execute(statement.order_by(DeadLetter.id.desc()).limit(limit))
    return [DeadLetterRecord(*row) for row in rows]


def resource_names(
    session: Session, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """userName or displayName of acknowledged resources, by (tenant, id)."""
    found: dict[tuple[str, str], str] = {}
    tenant_ids = {tenant_id for tenant_id, _ in keys}
    for tenant_id in tenant_ids:
        ids = [resource_id for owner, resource_id in keys if owner == tenant_id]
        rows = session.execute(
            select(AcknowledgedRow.id, AcknowledgedRow.data)
            .where(AcknowledgedRow.tenant_id == tenant_id, AcknowledgedRow.id.in_(ids))
        )
        for resource_id, data in rows:
            found[(tenant_id, resource_id)] = str(
                data.get("userName") or data.get("displayName") or resource_id
            )
    return found


@dataclass(frozen=True, slots=True)
class EventRecord:
    position: int
    event_id: str
    event_type: str
    created_at: datetime


def events_of(session: Session, tenant_id: str, resource_id: str, *, limit: int
              ) -> list[EventRecord]:
    rows = session.execute(
        select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.event_type,
               OutboxEvent.created_at)
        .where(OutboxEvent.tenant_id == tenant_id, OutboxEvent.resource_id == resource_id)
        .order_by(OutboxEvent.id.desc()).limit(limit)
    )
    return [EventRecord(*row) for row in reversed(list(rows))]


def endpoint_cursors(session: Session, tenant_id: str) -> list[int]:
    """How far delivery came to each enabled endpoint of the tenant."""
    return list(session.scalars(
        select(WebhookEndpoint.cursor)
        .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.disabled_at.is_(None))
    ))


@dataclass(frozen=True, slots=True)
class LoginRecord:
    decided_at: datetime
    issuer: str
    subject: str
    decision: str
    reason: str
    action: str


def logins_of(session: Session, tenant_id: str, user_id: str, *, limit: int
              ) -> list[LoginRecord]:
    rows = session.execute(
        select(LoginDecision.created_at, LoginDecision.issuer, LoginDecision.subject,
               LoginDecision.decision, LoginDecision.reason, LoginDecision.action)
        .where(LoginDecision.tenant_id == tenant_id, LoginDecision.user_id == user_id)
        .order_by(LoginDecision.id.desc()).limit(limit)
    )
    return [LoginRecord(*row) for row in reversed(list(rows))]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    endpoint_id: str
    endpoint_url: str
    tenant_name: str
    event_id: str
    attempted_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: float | None


def delivery_attempts(session: Session, *, tenant_id: str | None, limit: int
                      ) -> list[AttemptRecord]:
    """The latest webhook attempts, newest first."""
    statement = (
        select(WebhookAttempt.endpoint_id, WebhookEndpoint.url, Tenant.name,
               WebhookAttempt.event_id, WebhookAttempt.attempted_at, WebhookAttempt.status_code,
               WebhookAttempt.error, WebhookAttempt.latency_ms)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookAttempt.endpoint_id)
        .join(Tenant, Tenant.id == WebhookEndpoint.tenant_id)
    )
    if tenant_id is not None:
        statement = statement.where(WebhookEndpoint.tenant_id == tenant_id)
    rows = session.execute(statement.order_by(WebhookAttempt.id.desc()).limit(limit))
    return [AttemptRecord(*row) for row in rows]
