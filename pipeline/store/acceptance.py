"""The statements of an accepting transaction that creates a resource.

A create reserves the resource's unique keys and journals its command. On PostgreSQL both go
into one statement (a data-modifying CTE: the journal row is inserted only if the resource row
was), saving a round trip on the hottest path of an initial sync; SQLite runs the two inserts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, SmallInteger, String, insert, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from pipeline.commands import Command
from pipeline.store import acknowledged, journal
from pipeline.store.db import is_postgres

_LITERAL_TYPES: dict[str, Any] = {
    "tenant_id": String(), "resource_type": String(), "kind": String(), "command": JSON(),
    "status": String(), "lane": SmallInteger(), "attempts": Integer(), "request_id": String(),
    "created_at": DateTime(timezone=True),
}


def insert_created(
    session: Session,
    tenant_id: str,
    command: Command,
    data: dict[str, Any],
    *,
    now: datetime,
    create_digest: str,
    request_id: str,
) -> bool:
    """Insert the new resource and journal its create; False (and nothing) on a key conflict."""
    entry = journal.entry_values(tenant_id, command, now=now, request_id=request_id)
    if not is_postgres(session):
        if not acknowledged.insert_new(
            session, tenant_id, command.resource_id, command.resource_type, data,
            now=now, create_digest=create_digest,
        ):
            return False
        journal.append(session, tenant_id, command, now=now, request_id=request_id)
        return True
    resource = acknowledged.new_row(
        tenant_id, command.resource_id, command.resource_type, data,
        now=now, create_digest=create_digest,
    )
    table = acknowledged.TABLE
    created = (
        postgresql.insert(table).values(resource).on_conflict_do_nothing()
        .returning(table.c.id).cte("created")
    )
    columns = [name for name in entry if name != "resource_id"]
    journaled = insert(journal.TABLE).from_select(
        ["resource_id", *columns],
        select(created.c.id, *(literal(entry[c], _LITERAL_TYPES[c]) for c in columns)),
    ).returning(journal.TABLE.c.seq)
    return session.execute(journaled).first() is not None
