"""Index pending journal entries by tenant, for fair claiming.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_journal_pending_tenant", "journal", ["tenant_id", "lane", "seq"],
        postgresql_where=_PENDING, sqlite_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_journal_pending_tenant", table_name="journal")
