"""Index journal.applied_at for the measured drain rate.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_journal_applied_at", "journal", ["applied_at"])


def downgrade() -> None:
    op.drop_index("ix_journal_applied_at", table_name="journal")
