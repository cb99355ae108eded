"""Extension schemas declared per tenant (stored as their RFC 7643 §7 documents).
See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.store.models import TenantSchema as Row


@dataclass(frozen=True, slots=True)
class Declared:
    resource_type: str
    document: dict[str, Any]
    required: bool


def declared(session: Session, tenant_id: str) -> list[Declared]:
    rows = session.execute(
        select(Row.resource_type, Row.document, Row.required)
        .where(Row.tenant_id == tenant_id).order_by(Row.created_at, Row.schema_id)
    )
    return [Declared(row.resource_type, row.document, row.required) for row in rows]


def add(
    session: Session, tenant_id: str, declaration: Declared, *, now: datetime
) -> None:
    session.add(Row(
        tenant_id=tenant_id, schema_id=declaration.document["id"],
        resource_type=declaration.resource_type, required=declaration.required,
        document=declaration.document, created_at=now,
    ))
    session.flush()


def remove(session: Session, tenant_id: str, schema_id: str) -> None:
    result = session.execute(
        delete(Row).where(Row.tenant_id == tenant_id, Row.schema_id == schema_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"The tenant declared no schema {schema_id!r}.")
