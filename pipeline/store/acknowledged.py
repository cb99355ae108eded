"""The acknowledged state (`resources` table): unique keys, read-your-writes, PATCH bases.
See docs/ARCHITECTURE.md ("Two views of the directory").
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import Uniqueness
from scimflow.pipeline.scim.unicode import fold_key, is_storable_text
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.models import AcknowledgedRow as Row

PASSWORD = "password"
# Who wrote a resource (`resources.source`): SCIM, or a JIT login until SCIM claims it.
SCIM = "scim"
JIT = "jit"
# Hot-path statements use the Core table: the ORM layer adds CPU and nothing else to them.
TABLE: Table = cast(Table, Row.__table__)


@dataclass(frozen=True, slots=True)
class AcknowledgedResource:
    """One resource as the API acknowledged it (group members excluded)."""

    id: str
    resource_type: str
    version: int
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    create_digest: str | None = None
    source: str = SCIM


def key_columns(resource_type: str, data: Mapping[str, Any]) -> dict[str, str | None]:
    """The unique keys of a resource, normalised as the unique indexes compare them."""
    user_name = data.get("userName") if resource_type == "User" else None
    display_name = data.get("displayName") if resource_type == "Group" else None
    return {
        "user_name_key": fold_key(user_name) if isinstance(user_name, str) else None,
        "external_id": data.get("externalId"),
        "display_name_key": fold_key(display_name) if isinstance(display_name, str) else None,
    }


def without_password(data: dict[str, Any]) -> dict[str, Any]:
    """The acknowledged state keeps no password, not even sealed: nothing here reads it (it is
    never returned nor filtered on), and a PUT without one keeps the applied hash."""
    if PASSWORD not in data:
        return data
    return {name: value for name, value in data.items() if name != PASSWORD}


def insert_row(session: Session, row: dict[str, Any]) -> bool:
    """Insert a new resource's row (`new_row`); False when one of its unique keys is taken.

    `ON CONFLICT DO NOTHING` keeps the happy path to one statement and makes the race of two
    concurrent POSTs for one userName end in exactly one row, decided by the unique index.
    """
    dialect = postgresql if is_postgres(session) else sqlite
    statement = dialect.insert(TABLE).values(row).on_conflict_do_nothing().returning(TABLE.c.id)
    return session.execute(statement).first() is not None


def new_row(
    tenant_id: str,
    resource_id: str,
    resource_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    create_digest: str,
    source: str = SCIM,
) -> dict[str, Any]:
    """The `resources` row of a resource at its creation (version 1)."""
    data = without_password(data)
    return {
        "tenant_id": tenant_id,
        "id": resource_id,
        "resource_type": resource_type,
        "version": 1,
        "data": data,
        "create_digest": create_digest,
        "source": source,
        "created_at": now,
        "updated_at": now,
        **key_columns(resource_type, data),
    }


def get(
    session: Session,
    tenant_id: str,
    resource_type: str,
    resource_id: str,
    *,
    for_update: bool = False,
) -> AcknowledgedResource | None:
    if not is_storable_text(resource_id):
        # No stored id holds NUL (ids are UUIDs), and PostgreSQL would refuse to compare one.
        return None
    # No type in the statement, as in `unique_lookup`: the primary key is then the only index
    # serving both equalities; a resource of another type is no match.
    statement = select(Row).where(Row.tenant_id == tenant_id, Row.id == resource_id)
    if for_update:
        statement = statement.with_for_update()
    row = session.execute(statement).scalar_one_or_none()
    return None if row is None or row.resource_type != resource_type else from_row(row)


def find_conflict(
    session: Session,
    tenant_id: str,
    resource_type: str,
    data: Mapping[str, Any],
    *,
    excluding: str | None = None,
) -> AcknowledgedResource | None:
    """The resource holding one of `data`'s unique keys, if any, other than `excluding`."""
    keys = {k: v for k, v in key_columns(resource_type, data).items() if v is not None}
    if not keys:
        return None
    clauses = [getattr(Row, column) == value for column, value in keys.items()]
    # Keys and tenant only, each arm served by its key's index (see `unique_lookup`); the
    # type is checked on the few rows read (an externalId may be shared across types).
    statement = select(Row).where(Row.tenant_id == tenant_id, or_(*clauses))
    if excluding is not None:
        # A resource keeping one of its own keys would otherwise be the row found, and the
        # key it takes from another would reach the unique index unnamed.
        statement = statement.where(Row.id != excluding)
    rows = session.execute(statement).scalars()
    taken = next((row for row in rows if row.resource_type == resource_type), None)
    return None if taken is None else from_row(taken)


def save(
    session: Session,
    tenant_id: str,
    current: AcknowledgedResource,
    data: dict[str, Any],
    *,
    now: datetime,
    source: str = SCIM,
) -> AcknowledgedResource:
    """Store a new version written by `source` (a SCIM write claims a JIT user); a unique key
    taken by another resource is a 409."""
    taken = find_conflict(session, tenant_id, current.resource_type, data, excluding=current.id)
    if taken is not None:
        raise Uniqueness(conflict_detail(current.resource_type, data, taken))
    version = current.version + 1
    data = without_password(data)
    session.execute(
        update(Row)
        .where(Row.tenant_id == tenant_id, Row.id == current.id)
        .values(
            data=data, version=version, updated_at=now, source=source,
            **key_columns(current.resource_type, data),
        )
    )
    return AcknowledgedResource(
        current.id,
        current.resource_type,
        version,
        data,
        current.created_at,
        now,
        current.create_digest,
        source,
    )


def set_create_digest(
    session: Session, tenant_id: str, resource: AcknowledgedResource, digest: str
) -> AcknowledgedResource:
    """Record the POST a resource now answers to (a SCIM POST claiming a JIT user)."""
    session.execute(update(Row).where(Row.tenant_id == tenant_id, Row.id == resource.id)
                    .values(create_digest=digest))
    return replace(resource, create_digest=digest)


def find_user(
    session: Session, tenant_id: str, *, external_id: str | None = None,
    user_names: Collection[str] = (),
) -> AcknowledgedResource | None:
    """The user holding this externalId, else one of these userNames (folded), if any."""
    clauses = [Row.user_name_key == fold_key(name) for name in user_names]
    if external_id is not None:
        clauses.append(Row.external_id == external_id)
    if not clauses:
        return None
    rows = session.execute(select(Row).where(Row.tenant_id == tenant_id, or_(*clauses))).scalars()
    users = [row for row in rows if row.resource_type == "User"]
    by_external_id = [row for row in users if external_id and row.external_id == external_id]
    found = by_external_id or users
    return from_row(found[0]) if found else None


def remove(session: Session, tenant_id: str, resource_id: str) -> None:
    session.execute(delete(Row).where(Row.tenant_id == tenant_id, Row.id == resource_id))


def existing_types(
    session: Session, tenant_id: str, resource_ids: Collection[str]
) -> dict[str, str]:
    """Which of these ids are resources of the tenant, and of what type."""
    if not resource_ids:
        return {}
    rows = session.execute(
        select(Row.id, Row.resource_type).where(
            Row.tenant_id == tenant_id, Row.id.in_(list(resource_ids))
        )
    )
    return {row.id: row.resource_type for row in rows}


# The attribute each key column of `key_columns` holds, for error details.
KEY_ATTRIBUTES = {"user_name_key": "userName", "external_id": "externalId",
                  "display_name_key": "displayName"}


def conflict_detail(
    resource_type: str, data: Mapping[str, Any], taken: AcknowledgedResource | None
) -> str:
    """The 409 detail: the unique keys of `data` that `taken` holds, never an absent one."""
    wanted = {k: v for k, v in key_columns(resource_type, data).items() if v is not None}
    held = key_columns(resource_type, taken.data) if taken is not None else {}
    clashing = [column for column, key in wanted.items() if held.get(column) == key]
    named = [KEY_ATTRIBUTES[column] for column in clashing or wanted]
    described = " and ".join(f"{name} {json.dumps(data[name])}" for name in named)
    verb = "are" if len(named) > 1 else "is"
    return f"{described or 'A unique attribute value'} {verb} already in use."


def from_row(row: Any) -> AcknowledgedResource:
    """An AcknowledgedResource from a `resources` row (ORM object or selected columns)."""
    return AcknowledgedResource(
        row.id,
        row.resource_type,
        row.version,
        row.data,
        row.created_at,
        row.updated_at,
        row.create_digest,
        row.source,
    )
