"""Index what retention prunes by: delivered outbox events, dead letters, events naming entries.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDELIVERED = sa.text("delivered_at IS NULL")
_DELIVERED = sa.text("delivered_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_undelivered_journal_seq", "outbox", ["journal_seq"],
        postgresql_where=_UNDELIVERED, sqlite_where=_UNDELIVERED,
    )
    op.create_index(
        "ix_outbox_delivered_at", "outbox", ["delivered_at"],
        postgresql_where=_DELIVERED, sqlite_where=_DELIVERED,
    )
    op.create_index("ix_dead_letters_created_at", "dead_letters", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_created_at", table_name="dead_letters")
    op.drop_index("ix_outbox_delivered_at", table_name="outbox")
    op.drop_index("ix_outbox_undelivered_journal_seq", table_name="outbox")
