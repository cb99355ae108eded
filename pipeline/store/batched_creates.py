"""The statements that accept a create: reserve the resource's unique keys, journal its command.

`insert_created` runs them inside a session's transaction (SQLite, and a group created with
members, whose references are checked in the same transaction); `BatchedCreates` (PostgreSQL)
writes concurrent creates as one autocommitting CTE whose text never changes, so psycopg
prepares it once per connection, and a create whose keys are taken leaves nothing behind.
See docs/ARCHITECTURE.md ("The path of a write").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from scimflow.pipeline.commands import Command
from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.group_commit import GroupCommit
from scimflow.pipeline.store import acknowledged, journal
from scimflow.pipeline.store.bulk import json_value
from scimflow.pipeline.store.db import database_errors


@dataclass(frozen=True, slots=True)
class NewResource:
    """A create to accept: its `resources` row and the journal row of its command."""

    resource: dict[str, Any]
    entry: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.resource["id"])


def new_resource(
    tenant_id: str,
    command: Command,
    data: dict[str, Any],
    *,
    now: datetime,
    create_digest: str,
    request_id: str,
) -> NewResource:
    resource = acknowledged.new_row(
        tenant_id, command.resource_id, command.resource_type, data,
        now=now, create_digest=create_digest,
    )
    return NewResource(resource, journal.entry_values(tenant_id, command, now=now,
                                                      request_id=request_id))


def insert_created(session: Session, new: NewResource) -> bool:
    """Insert the resource and journal its create; False (and nothing) on a key conflict."""
    if not acknowledged.insert_row(session, new.resource):
        return False
    session.execute(journal.TABLE.insert().values(new.entry))
    return True


# Columns of both rows, as `json_to_recordset` reads them from the batch document.
_BATCH_COLUMNS = """
    ord integer, tenant_id text, id text, resource_type text, version integer, data json,
    user_name_key text, external_id text, display_name_key text, create_digest text,
    created_at timestamptz, updated_at timestamptz,
    kind text, command json, status text, lane smallint, attempts integer, request_id text
"""
_INSERT_BATCH = f"""
WITH batch AS (
    SELECT * FROM json_to_recordset(%(batch)s::json) AS b({_BATCH_COLUMNS})
), created AS (
    INSERT INTO resources (tenant_id, id, resource_type, version, data, user_name_key,
                           external_id, display_name_key, create_digest, created_at, updated_at)
    SELECT tenant_id, id, resource_type, version, data, user_name_key,
           external_id, display_name_key, create_digest, created_at, updated_at
    FROM batch ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, id
)
INSERT INTO journal (tenant_id, resource_id, resource_type, kind, command, status, lane,
                     attempts, request_id, created_at)
SELECT b.tenant_id, b.id, b.resource_type, b.kind, b.command, b.status, b.lane,
       b.attempts, b.request_id, b.created_at
FROM batch b JOIN created c ON c.tenant_id = b.tenant_id AND c.id = b.id
ORDER BY b.ord
RETURNING resource_id
"""
_ENTRY_COLUMNS = ("kind", "command", "status", "lane", "attempts", "request_id")


def insert_created_batch(connection: Connection, batch: Sequence[NewResource]) -> list[bool]:
    """PostgreSQL: insert and journal many creates in one statement; per create, inserted?"""
    document = [
        {**new.resource, **{name: new.entry[name] for name in _ENTRY_COLUMNS}, "ord": ordinal}
        for ordinal, new in enumerate(batch)
    ]
    encoded = json.dumps(document, default=json_value, separators=(",", ":"))
    inserted = {row[0] for row in connection.exec_driver_sql(_INSERT_BATCH, {"batch": encoded})}
    return [new.id in inserted for new in batch]


class BatchedCreates:
    """Accepts creates on PostgreSQL, writing those of concurrent requests together."""

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        # Each batch is one statement: autocommit spares the BEGIN and COMMIT round trips.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # An unavailable database fails every create of a batch alike: no point in each of
        # them trying again alone, on a pool that is already exhausted.
        self._group: GroupCommit[NewResource, bool] = GroupCommit(
            self._write, max_batch=max_batch, shared_errors=(Unavailable,)
        )

    def insert(self, new: NewResource) -> bool:
        """Durably insert and journal `new`; False (and nothing) if its keys are taken."""
        return self._group.submit(new)

    def _write(self, batch: Sequence[NewResource]) -> list[bool]:
        with database_errors(), self._engine.connect() as connection:
            return insert_created_batch(connection, batch)
