"""What the API saw of each tenant's traffic: the IdP its requests come from and the 429s it
was sent per minute (`tenant_idps`, `tenant_refusals`), written in batches by
pipeline/services/traffic.py. See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.models import Tenant, TenantIdp, TenantRefusals


def record_dialects(session: Session, seen: Mapping[str, str], *, now: datetime) -> None:
    """Upsert each tenant's IdP; a tenant deleted meanwhile is skipped (no orphan row)."""
    dialect = postgresql if is_postgres(session) else sqlite
    for tenant_id, name in seen.items():
        rows = select(Tenant.id, literal(name), literal(now)).where(Tenant.id == tenant_id)
        statement = dialect.insert(TenantIdp).from_select(
            ["tenant_id", "dialect", "seen_at"], rows)
        session.execute(statement.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"dialect": statement.excluded.dialect, "seen_at": statement.excluded.seen_at},
        ))


def add_refusals(session: Session, counts: Mapping[tuple[str, datetime], int]) -> None:
    """Add the 429s counted per (tenant, minute) to what other processes counted."""
    dialect = postgresql if is_postgres(session) else sqlite
    for (tenant_id, minute), refused in counts.items():
        rows = select(Tenant.id, literal(minute), literal(refused)).where(Tenant.id == tenant_id)
        statement = dialect.insert(TenantRefusals).from_select(
            ["tenant_id", "minute", "refused"], rows)
        session.execute(statement.on_conflict_do_update(
            index_elements=["tenant_id", "minute"],
            set_={"refused": TenantRefusals.refused + statement.excluded.refused},
        ))


def forget_refusals_before(session: Session, moment: datetime) -> None:
    session.execute(delete(TenantRefusals).where(TenantRefusals.minute < moment))


def dialects(session: Session, tenant_ids: Collection[str] | None = None) -> dict[str, str]:
    statement = select(TenantIdp.tenant_id, TenantIdp.dialect)
    if tenant_ids is not None:
        statement = statement.where(TenantIdp.tenant_id.in_(list(tenant_ids)))
    return dict(session.execute(statement).all())


def refusals_since(
    session: Session, moment: datetime, tenant_ids: Collection[str] | None = None
) -> dict[str, int]:
    statement = (select(TenantRefusals.tenant_id, func.sum(TenantRefusals.refused))
                 .where(TenantRefusals.minute >= moment).group_by(TenantRefusals.tenant_id))
    if tenant_ids is not None:
        statement = statement.where(TenantRefusals.tenant_id.in_(list(tenant_ids)))
    return {tenant_id: int(total) for tenant_id, total in session.execute(statement)}
