"""The operator view: operator accounts and their console sessions, the IdP each tenant's
requests come from and the 429s it was sent, dead letters discarded without applying, and
the journal indexes the per-tenant figures read.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)
RETRYING = "status = 'pending' AND attempts > 0"


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", ID, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                     nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as dead_letters:
        dead_letters.add_column(_when("discarded_at", nullable=True))
    op.create_index("ix_journal_tenant_created", "journal", ["tenant_id", "created_at"])
    op.create_index("ix_journal_tenant_applied", "journal", ["tenant_id", "lane", "applied_at"])
    op.create_index("ix_journal_retrying", "journal", ["tenant_id"],
                    postgresql_where=sa.text(RETRYING), sqlite_where=sa.text(RETRYING))
    op.create_table(
        "operators",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("username_key", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username_key"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("operator_id", ID, sa.ForeignKey("operators.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _when("created_at"), _when("expires_at"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_console_sessions_operator_id", "console_sessions", ["operator_id"])
    op.create_table(
        "tenant_idps", _tenant(),
        sa.Column("dialect", sa.String(200), nullable=False),
        _when("seen_at"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "tenant_refusals", _tenant(),
        _when("minute"),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "minute"),
    )


def downgrade() -> None:
    for table in ("tenant_refusals", "tenant_idps", "console_sessions", "operators"):
        op.drop_table(table)
    op.drop_index("ix_journal_retrying", table_name="journal")
    op.drop_index("ix_journal_tenant_applied", table_name="journal")
    op.drop_index("ix_journal_tenant_created", table_name="journal")
    with op.batch_alter_table("dead_letters") as dead_letters:
        dead_letters.drop_column("discarded_at")
