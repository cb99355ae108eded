"""journal_waits: which postponed entry waits for which resource.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journal_waits",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("seq", "resource_id"),
    )
    op.create_index("ix_journal_waits_resource", "journal_waits", ["tenant_id", "resource_id"])


def downgrade() -> None:
    op.drop_index("ix_journal_waits_resource", table_name="journal_waits")
    op.drop_table("journal_waits")
