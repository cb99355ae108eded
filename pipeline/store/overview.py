"""The operator view's per-tenant figures: backlog and its oldest entry, entries retrying, the
apply rate of the last minute, dead letters, deprovision latency, last write and last apply.

Every figure is an aggregate over an index (the pending partial indexes for the backlog and
its oldest entry, `ix_journal_retrying`, `ix_journal_tenant_applied` for the last minute and
the last apply, `ix_journal_tenant_created` for the last write), in a handful of statements
for all the tenants asked for. See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from scimflow.pipeline.store.journal import DEPROVISION_LANE, NORMAL_LANE, PENDING
from scimflow.pipeline.store.models import (
    DeadLetter,
    JournalEntry,
    Tenant,
)

# Literals, not parameters: PostgreSQL matches a partial index's predicate only against values
# it sees when planning, and a prepared statement's generic plan sees none.
IS_PENDING = JournalEntry.status == literal_column(f"'{PENDING}'")
IS_RETRYING = and_(IS_PENDING, JournalEntry.attempts > literal_column("0"))

RATE_WINDOW = timedelta(minutes=1)
LATENCY_SAMPLE = 1000
UNION_CHUNK = 200


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
        # Both lanes named: `ix_journal_tenant_applied` leads with (tenant_id, lane).
        .where(JournalEntry.applied_at > moment, JournalEntry.tenant_id.in_(ids),
               JournalEntry.lane.in_((DEPROVISION_LANE, NORMAL_LANE)))
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
    """Each tenant's last LATENCY_SAMPLE deprovisioning entries: one bounded backward range of
    `ix_journal_tenant_applied` per tenant, UNION_CHUNK tenants per statement (SQLite refuses
    a compound statement of more than 500 parts)."""
    found: dict[str, list[float]] = {}
    for start in range(0, len(ids), UNION_CHUNK):
        parts = [
            select(JournalEntry.tenant_id, JournalEntry.created_at, JournalEntry.applied_at)
            .where(JournalEntry.tenant_id == tenant_id, JournalEntry.lane == DEPROVISION_LANE,
                   JournalEntry.applied_at.is_not(None))
            .order_by(JournalEntry.applied_at.desc()).limit(LATENCY_SAMPLE).subquery()
            for tenant_id in ids[start:start + UNION_CHUNK]
        ]
        statement = union_all(*(select(part) for part in parts))
        for tenant_id, created_at, applied_at in session.execute(statement):
            found.setdefault(tenant_id, []).append((applied_at - created_at).total_seconds())
    return {tenant_id: tuple(sorted(values)) for tenant_id, values in found.items()}


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None
