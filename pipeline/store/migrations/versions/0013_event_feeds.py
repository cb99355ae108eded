"""The RFC 8936 poll feed: each application key's acknowledged position, and the events it
acknowledged out of order above that position.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_feeds",
        sa.Column("app_key_id", sa.String(36),
                  sa.ForeignKey("app_keys.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "event_feed_acks",
        sa.Column("app_key_id", sa.String(36),
                  sa.ForeignKey("event_feeds.app_key_id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app_key_id", "event_position"),
    )


def downgrade() -> None:
    op.drop_table("event_feed_acks")
    op.drop_table("event_feeds")
