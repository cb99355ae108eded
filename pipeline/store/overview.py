"""The operator view's queries: per-tenant figures, a tenant's directory page and the state of
the resources on it, a resource's history, events and login decisions, webhook deliveries.

Every figure is an aggregate over an index (the pending partial indexes for the backlog and
its oldest entry, `ix_journal_retrying`, `ix_journal_applied_at` for the last minute,
`ix_journal_tenant_created` / `ix_journal_tenant_applied` for the last write and apply),
every list is bounded, and a page's rows are completed with one query per kind of detail,
never one per row. See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.app_tables import LoginDecision
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.event_tables import OutboxEvent, WebhookAttempt, WebhookEndpoint
from scimflow.pipeline.store.journal import APPLIED, DEPROVISION_LANE, NORMAL_LANE, PENDING
from scimflow.pipeline.store.models import (
    AcknowledgedRow,
    DeadLetter,
    Group,
    JournalEntry,
    JournalWait,
    Membership,
    Tenant,
)

# Literals, not parameters: PostgreSQL matches a partial index's predicate only against values
# it sees when planning, and a prepared statement's generic plan sees none.
IS_PENDING = JournalEntry.status == literal_column(f"'{PENDING}'")
IS_RETRYING = and_(IS_PENDING, JournalEntry.attempts > literal_column("0"))

RATE_WINDOW = timedelta(minutes=1)
LATENCY_SAMPLE = 1000
MEMBERSHIPS_SHOWN = 20


# --- Tenants ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantFigures:
    tenant_id: str
    name: str
    disabled: bool
    backlog: int
    oldest_pending_at: datetime | None
    # Pending entries that failed at least once (waiting for a member, or backing off).
    retrying: int
    applied_last_minute: int
    dead_letters: int
    last_write_at: datetime | None
    last_applied_at: datetime | None
    # Seconds from acknowledgement to applied, of the last deprovisioning entries, sorted.
    deprovision_latencies: tuple[float, ...]


def unsettled() -> ColumnElement[bool]:
    """A dead letter neither replayed nor discarded."""
    return and_(DeadLetter.replayed_at.is_(None), DeadLetter.discarded_at.is_(None))


def tenant_figures(
    session: Session, *, now: datetime, tenant_ids: Collection[str] | None = None
) -> list[TenantFigures]:
    """The figures of every tenant (or of these), ordered by name: a handful of queries."""
    tenants = _tenant_rows(session, tenant_ids)
    ids = [row.id for row in tenants]
    if not ids:
        return []
    pending = _pending(session, ids)
    applied = _applied_since(session, now - RATE_WINDOW, ids)
    dead = _dead_letter_counts(session, ids)
    latencies = _deprovision_latencies(session, ids)
    return [
        TenantFigures(
            row.id, row.name, row.disabled_at is not None,
            backlog=pending.get(row.id, (0, 0))[0],
            oldest_pending_at=_earliest(row.oldest_deprovision_at, row.oldest_normal_at),
            retrying=pending.get(row.id, (0, 0))[1],
            applied_last_minute=applied.get(row.id, 0),
            dead_letters=dead.get(row.id, 0),
            last_write_at=row.last_write_at,
            last_applied_at=_latest(row.last_deprovision_at, row.last_normal_at),
            deprovision_latencies=latencies.get(row.id, ()),
        )
        for row in tenants
    ]


def _tenant_rows(session: Session, tenant_ids: Collection[str] | None) -> list[Any]:
    # Correlated subqueries: one probe per tenant and lane on the tenant-led journal indexes,
    # whatever the size of the journal or of the backlog.
    def last(column: Any, *where: Any) -> Any:
        return (select(func.max(column))
                .where(JournalEntry.tenant_id == Tenant.id, *where).scalar_subquery())

    statement = select(
        Tenant.id, Tenant.name, Tenant.disabled_at,
        last(JournalEntry.created_at).label("last_write_at"),
        last(JournalEntry.applied_at, JournalEntry.lane == DEPROVISION_LANE)
        .label("last_deprovision_at"),
        last(JournalEntry.applied_at, JournalEntry.lane == NORMAL_LANE).label("last_normal_at"),
        _oldest_pending(DEPROVISION_LANE).label("oldest_deprovision_at"),
        _oldest_pending(NORMAL_LANE).label("oldest_normal_at"),
    ).order_by(Tenant.name)
    if tenant_ids is not None:
        statement = statement.where(Tenant.id.in_(list(tenant_ids)))
    return list(session.execute(statement))


def _oldest_pending(lane: int) -> Any:
    """When the lane's oldest pending entry of the tenant was acknowledged: the first entry
    of the tenant and lane in `ix_journal_pending_tenant`."""
    return (select(JournalEntry.created_at)
            .where(JournalEntry.tenant_id == Tenant.id,
                   JournalEntry.lane == literal_column(str(lane)), IS_PENDING)
            .order_by(JournalEntry.seq).limit(1).scalar_subquery())


def _pending(session: Session, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(backlog, retrying) per tenant: a count over the pending partial index, and one over
    the (nearly always empty) retrying one."""
    counts = session.execute(
        select(JournalEntry.tenant_id, func.count())
        .where(IS_PENDING, JournalEntry.tenant_id.in_(ids))
        .group_by(JournalEntry.tenant_id)
    )
    retrying = dict(session.execute(
        select(JournalEntry.tenant_id, func.count())
        .where(IS_RETRYING, JournalEntry.tenant_id.in_(ids))
        .group_by(JournalEntry.tenant_id)
    ).all())
    return {tenant_id: (int(count), int(retrying.get(tenant_id, 0)))
            for tenant_id, count in counts}


def _applied_since(session: Session, moment: datetime, ids: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(JournalEntry.tenant_id, func.count())
        .where(JournalEntry.applied_at > moment, JournalEntry.tenant_id.in_(ids))
        .group_by(JournalEntry.tenant_id)
    )
    return {tenant_id: int(count) for tenant_id, count in rows}


def _dead_letter_counts(session: Session, ids: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(DeadLetter.tenant_id, func.count())
        .where(unsettled(), DeadLetter.tenant_id.in_(ids)).group_by(DeadLetter.tenant_id)
    )
    return {tenant_id: int(count) for tenant_id, count in rows}


def _deprovision_latencies(session: Session, ids: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Each tenant's last LATENCY_SAMPLE deprovisioning entries: one statement, one bounded
    backward range of `ix_journal_tenant_applied` per tenant."""
    parts = [
        select(JournalEntry.tenant_id, JournalEntry.created_at, JournalEntry.applied_at)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.lane == DEPROVISION_LANE,
               JournalEntry.applied_at.is_not(None))
        .order_by(JournalEntry.applied_at.desc()).limit(LATENCY_SAMPLE).subquery()
        for tenant_id in ids
    ]
    statement = union_all(*(select(part) for part in parts))
    found: dict[str, list[float]] = {}
    for tenant_id, created_at, applied_at in session.execute(statement):
        found.setdefault(tenant_id, []).append((applied_at - created_at).total_seconds())
    return {tenant_id: tuple(sorted(values)) for tenant_id, values in found.items()}


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


# --- Directory -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceRow:
    id: str
    resource_type: str
    data: dict[str, Any]
    source: str
    created_at: datetime
    updated_at: datetime


_RESOURCE_COLUMNS = (AcknowledgedRow.id, AcknowledgedRow.resource_type, AcknowledgedRow.data,
                     AcknowledgedRow.source, AcknowledgedRow.created_at,
                     AcknowledgedRow.updated_at)


def search_resources(
    session: Session, tenant_id: str, query: str, resource_type: str | None, *, limit: int
) -> tuple[list[ResourceRow], bool]:
    """With a query: the resources whose userName, displayName or externalId starts with it
    (case-insensitive), or an email when it holds an `@`, by name. Without one: the newest
    first, read backwards along `ix_resources_listing`, type by type. And whether more than
    `limit` matched."""
    if not query:
        return _newest(session, tenant_id, resource_type, limit=limit)
    name_key = func.coalesce(AcknowledgedRow.user_name_key, AcknowledgedRow.display_name_key)
    statement = select(*_RESOURCE_COLUMNS).where(AcknowledgedRow.tenant_id == tenant_id,
                                                 _matches(session, query))
    if resource_type is not None:
        statement = statement.where(AcknowledgedRow.resource_type == resource_type)
    rows = session.execute(
        statement.order_by(AcknowledgedRow.resource_type.desc(), name_key, AcknowledgedRow.id)
        .limit(limit + 1)
    ).all()
    return [ResourceRow(*row) for row in rows[:limit]], len(rows) > limit


def _newest(session: Session, tenant_id: str, resource_type: str | None, *, limit: int
            ) -> tuple[list[ResourceRow], bool]:
    found: list[ResourceRow] = []
    for type_name in (resource_type,) if resource_type else ("User", "Group"):
        rows = session.execute(
            select(*_RESOURCE_COLUMNS)
            .where(AcknowledgedRow.tenant_id == tenant_id,
                   AcknowledgedRow.resource_type == type_name)
            .order_by(AcknowledgedRow.created_at.desc(), AcknowledgedRow.id.desc())
            .limit(limit + 1)
        )
        found.extend(ResourceRow(*row) for row in rows)
    found.sort(key=lambda row: (row.created_at, row.id), reverse=True)
    return found[:limit], len(found) > limit


def _matches(session: Session, query: str) -> ColumnElement[bool]:
    folded, lowered = _prefix(fold_key(query)), _prefix(query.lower())
    keys: list[ColumnElement[bool] | TextClause] = [
        AcknowledgedRow.user_name_key.like(folded, escape="\\"),
        AcknowledgedRow.display_name_key.like(folded, escape="\\"),
        func.lower(AcknowledgedRow.external_id).like(lowered, escape="\\"),
    ]
    if "@" in query:
        # Emails live only in `data`: reading them costs a JSON parse per resource, so only
        # a query that can be an email's start reads them.
        email = _EMAIL_PREFIX_PG if is_postgres(session) else _EMAIL_PREFIX_SQLITE
        keys.append(text(email).bindparams(email_prefix=lowered))
    return or_(*keys)


def _prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# Canonical resources hold `emails` as a list of objects (pipeline/scim/): any of their values.
_EMAIL_PREFIX_PG = (
    "EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(resources.data -> 'emails')"
    " = 'array' THEN resources.data -> 'emails' ELSE '[]'::json END) AS email"
    " WHERE lower(email ->> 'value') LIKE :email_prefix ESCAPE '\\')"
)
_EMAIL_PREFIX_SQLITE = (
    "EXISTS (SELECT 1 FROM json_each(resources.data, '$.emails') AS email"
    " WHERE lower(json_extract(email.value, '$.value')) LIKE :email_prefix ESCAPE '\\')"
)


def find_resource(session: Session, tenant_id: str, reference: str) -> ResourceRow | None:
    """By id, then userName, displayName or externalId (one probe each, on their indexes)."""
    key = fold_key(reference)
    for condition in (AcknowledgedRow.id == reference, AcknowledgedRow.user_name_key == key,
                      AcknowledgedRow.display_name_key == key,
                      AcknowledgedRow.external_id == reference):
        row = session.execute(
            select(*_RESOURCE_COLUMNS)
            .where(AcknowledgedRow.tenant_id == tenant_id, condition).limit(1)
        ).first()
        if row is not None:
            return ResourceRow(*row)
    return None


@dataclass(frozen=True, slots=True)
class JournalState:
    """What the journal says of one resource now."""

    pending: bool = False
    waiting: bool = False
    dead_lettered: bool = False
    last_applied_at: datetime | None = None


def journal_states(
    session: Session, tenant_id: str, resource_ids: Collection[str]
) -> dict[str, JournalState]:
    """The state of each resource: three queries for the whole page."""
    ids = list(resource_ids)
    if not ids:
        return {}
    of_resources = (JournalEntry.tenant_id == tenant_id, JournalEntry.resource_id.in_(ids))
    pending_seqs: dict[int, str] = dict(session.execute(
        select(JournalEntry.seq, JournalEntry.resource_id)
        .where(*of_resources, IS_PENDING)
    ).all())
    waiting = {pending_seqs[seq] for seq in session.scalars(
        select(JournalWait.seq).where(JournalWait.seq.in_(list(pending_seqs)))
    )} if pending_seqs else set()
    applied: dict[str, datetime | None] = dict(session.execute(
        select(JournalEntry.resource_id, func.max(JournalEntry.applied_at))
        .where(*of_resources, JournalEntry.status == APPLIED).group_by(JournalEntry.resource_id)
    ).all())
    dead = set(session.scalars(
        select(DeadLetter.resource_id)
        .where(DeadLetter.tenant_id == tenant_id, DeadLetter.resource_id.in_(ids), unsettled())
    ))
    pending = set(pending_seqs.values())
    return {
        resource_id: JournalState(resource_id in pending, resource_id in waiting,
                                  resource_id in dead, applied.get(resource_id))
        for resource_id in ids
    }


def groups_of(session: Session, tenant_id: str, user_ids: Collection[str]) -> dict[str, list[str]]:
    """Each user's groups by displayName (at most MEMBERSHIPS_SHOWN each)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Membership.member_id, Group.display_name)
        .join(Group, and_(Group.tenant_id == Membership.tenant_id,
                          Group.id == Membership.group_id))
        .where(Membership.tenant_id == tenant_id, Membership.member_id.in_(list(user_ids)))
        .order_by(Membership.member_id, Group.display_name_key)
    )
    found: dict[str, list[str]] = {}
    for member_id, display_name in rows:
        names = found.setdefault(member_id, [])
        if len(names) < MEMBERSHIPS_SHOWN:
            names.append(display_name)
    return found


def member_counts(session: Session, tenant_id: str, group_ids: Collection[str]) -> dict[str, int]:
    if not group_ids:
        return {}
    rows = session.execute(
        select(Membership.group_id, func.count())
        .where(Membership.tenant_id == tenant_id, Membership.group_id.in_(list(group_ids)))
        .group_by(Membership.group_id)
    )
    return {group_id: int(count) for group_id, count in rows}


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
