"""Index the default listing order of resources (tenant, type, created_at, id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Paging a tenant's users in a stable order must not sort the whole tenant.
    op.create_index(
        "ix_resources_listing", "resources", ["tenant_id", "resource_type", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_resources_listing", table_name="resources")
