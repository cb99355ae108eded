"""The backlog as Prometheus reads it: pending journal entries and the oldest one's time, per
tenant, in one grouped query over the pending partial index (bounded by the tenants, not the
entries' count in what it returns). See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scimflow.pipeline.store.journal import PENDING
from scimflow.pipeline.store.models import JournalEntry, Tenant


def pending_by_tenant(session: Session) -> dict[str, tuple[int, datetime]]:
    """Tenant name -> (pending entries, when the oldest of them was acknowledged)."""
    rows = session.execute(
        select(Tenant.name, func.count(), func.min(JournalEntry.created_at))
        .join(Tenant, Tenant.id == JournalEntry.tenant_id)
        .where(JournalEntry.status == PENDING)
        .group_by(Tenant.name)
    )
    return {name: (int(count), oldest) for name, count, oldest in rows}
