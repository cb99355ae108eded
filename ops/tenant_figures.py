"""What operators see per tenant: backlog, lag, dead letters, deprovision latency.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scimflow.pipeline.store import journal
from scimflow.pipeline.store.journal import DEPROVISION_LANE, PENDING
from scimflow.pipeline.store.models import DeadLetter, JournalEntry, Tenant

LATENCY_SAMPLE = 1000


def tenant_status(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    """One row per tenant, each figure from one aggregate query over all tenants."""
    backlog = journal.backlog_by_tenant(session)
    oldest = dict(
        session.execute(
            select(JournalEntry.tenant_id, func.min(JournalEntry.created_at))
            .where(JournalEntry.status == PENDING).group_by(JournalEntry.tenant_id)
        ).all()
    )
    # Entries that failed at least once and wait for another attempt: a member that has not
    # landed yet, or an apply failure on its way to the dead letters (see `last_error`).
    retrying = dict(
        session.execute(
            select(JournalEntry.tenant_id, func.count())
            .where(JournalEntry.status == PENDING, JournalEntry.attempts > 0)
            .group_by(JournalEntry.tenant_id)
        ).all()
    )
    dead = dict(
        session.execute(
            select(DeadLetter.tenant_id, func.count())
            .where(DeadLetter.replayed_at.is_(None)).group_by(DeadLetter.tenant_id)
        ).all()
    )
    rows = []
    for tenant_id, name in session.execute(select(Tenant.id, Tenant.name).order_by(Tenant.name)):
        started = oldest.get(tenant_id)
        rows.append({
            "tenant": name,
            "tenant_id": tenant_id,
            "backlog": int(backlog.get(tenant_id, 0)),
            "oldest_pending_seconds": _age(now, started),
            "retrying": int(retrying.get(tenant_id, 0)),
            "dead_letters": int(dead.get(tenant_id, 0)),
            **deprovision_latency(session, tenant_id),
        })
    return rows


def deprovision_latency(session: Session, tenant_id: str) -> dict[str, float | None]:
    """p50/p99 seconds from acknowledgement to applied, over recent deprovisioning commands."""
    rows = session.execute(
        select(JournalEntry.created_at, JournalEntry.applied_at)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.lane == DEPROVISION_LANE,
               JournalEntry.applied_at.is_not(None))
        .order_by(JournalEntry.seq.desc()).limit(LATENCY_SAMPLE)
    ).all()
    latencies = sorted(_seconds(r.applied_at, r.created_at) for r in rows)
    return {
        "deprovision_p50_seconds": _percentile(latencies, 0.50),
        "deprovision_p99_seconds": _percentile(latencies, 0.99),
    }


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(fraction * len(values)))], 3)


def _age(now: datetime, started: datetime | None) -> float | None:
    return None if started is None else round(_seconds(now, started), 1)


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()
