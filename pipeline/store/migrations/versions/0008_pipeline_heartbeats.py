"""When the pipeline last moved: one row per kind of heartbeat (a drain, a sweep).

`/readyz` and `scimflow status` compare the last drain with the oldest due pending entry, so a
pipeline whose workers are all down is reported instead of silently acknowledging forever.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_heartbeats",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipeline_heartbeats")
