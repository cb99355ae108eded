"""One folding rule for case-insensitive unique keys, at acceptance and in the applied tables.

The applied tables enforced userName / group displayName uniqueness with the database's own
`lower()`, while acceptance folded with Python's: the two disagree (`ΟΔΟΣ` / `οδοσ`, and
SQLite's `lower()` folds ASCII only), so a write acknowledged as unique could fail to apply.
Both now store `fold_key(...)` (pipeline/scim/unicode.py) and index that column.

Existing keys are recomputed. Where two existing resources fold to one key (possible only for
data acknowledged under the old rule), the older takes the key and the newer a key of its own
(the folded key followed by `#` and its id), so the upgrade never fails on data that was valid
before it; such a name stays as it is, and nobody else can take it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from alembic import op

from scimflow.pipeline.scim.unicode import fold_key

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, source column, key column, old expression index)
_APPLIED = (
    ("users", "user_name", "user_name_key", "uq_users_user_name"),
    ("groups", "display_name", "display_name_key", "uq_groups_display_name"),
)
_RESOURCE_KEYS = (
    ("User", "user_name_key", "userName", "uq_resources_user_name"),
    ("Group", "display_name_key", "displayName", "uq_resources_display_name"),
)


def upgrade() -> None:
    for table, source, key, old_index in _APPLIED:
        op.drop_index(old_index, table_name=table)
        op.add_column(table, sa.Column(key, sa.String(512), nullable=True))
        _backfill_applied(table, source, key)
        with op.batch_alter_table(table) as batch:
            batch.alter_column(key, existing_type=sa.String(512), nullable=False)
        op.create_index(f"{old_index}_key", table, ["tenant_id", key], unique=True)
    for resource_type, key, attribute, index in _RESOURCE_KEYS:
        # Without its unique index while keys move: one key may pass from one row to another.
        op.drop_index(index, table_name="resources")
        _refold_acknowledged(resource_type, key, attribute)
        op.create_index(index, "resources", ["tenant_id", "resource_type", key], unique=True)


def downgrade() -> None:
    for table, source, key, old_index in _APPLIED:
        op.drop_index(f"{old_index}_key", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column(key)
        op.create_index(
            old_index, table, ["tenant_id", sa.func.lower(sa.text(source))], unique=True
        )


def _backfill_applied(table: str, source: str, key: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(f"SELECT tenant_id, id, {source} FROM {table} ORDER BY created_at, id")
    )
    keys = _assign((r[0], r[1], r[2]) for r in rows)
    statement = sa.text(f"UPDATE {table} SET {key} = :key WHERE tenant_id = :tenant AND id = :id")
    for (tenant_id, resource_id), value in keys.items():
        bind.execute(statement, {"key": value, "tenant": tenant_id, "id": resource_id})


def _refold_acknowledged(resource_type: str, key: str, attribute: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            f"SELECT tenant_id, id, {key}, data FROM resources WHERE resource_type = :type "
            "ORDER BY created_at, id"
        ),
        {"type": resource_type},
    )
    candidates = []
    for tenant_id, resource_id, old_key, data in rows:
        # psycopg decodes JSON columns; SQLite hands back the text.
        document = json.loads(data) if isinstance(data, str) else data
        value = document.get(attribute)
        if isinstance(value, str) and old_key is not None:
            candidates.append((tenant_id, resource_id, value))
    statement = sa.text(
        f"UPDATE resources SET {key} = :key WHERE tenant_id = :tenant AND id = :id"
    )
    for (tenant_id, resource_id), value in _assign(candidates).items():
        bind.execute(statement, {"key": value, "tenant": tenant_id, "id": resource_id})


def _assign(rows: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """The key of each (tenant, id): folded, or one of its own where the folded one is taken."""
    taken: set[tuple[str, str]] = set()
    assigned: dict[tuple[str, str], str] = {}
    for tenant_id, resource_id, text in rows:
        key = fold_key(text)
        if (tenant_id, key) in taken:
            key = f"{key[:470]}#{resource_id}"
        taken.add((tenant_id, key))
        assigned[(tenant_id, resource_id)] = key
    return assigned
