"""The application side: who wrote a resource (SCIM or a JIT login), why a session was
revoked, tenants' login policies, login identities and decisions, group-to-role mappings and
the roles they give.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM = sa.String(512)
ID = sa.String(36)


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", ID, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                     nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("resources") as resources:
        resources.add_column(sa.Column("source", sa.String(8), nullable=False,
                                       server_default="scim"))
    with op.batch_alter_table("user_sessions") as sessions:
        sessions.add_column(sa.Column("revoked_reason", sa.String(32)))
    op.create_table(
        "tenant_login_policies", _tenant(),
        sa.Column("mode", sa.String(24), nullable=False),
        sa.Column("issuers", sa.JSON(), nullable=False),
        sa.Column("match_verified_email", sa.Boolean(), nullable=False),
        sa.Column("sync_attributes", sa.Boolean(), nullable=False),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "login_identities", _tenant(),
        sa.Column("issuer", CLAIM, nullable=False),
        sa.Column("subject", CLAIM, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("email_key", CLAIM),
        sa.Column("group_claims", sa.JSON(), nullable=False),
        _when("created_at"), _when("last_login_at"),
        sa.PrimaryKeyConstraint("tenant_id", "issuer", "subject"),
    )
    op.create_index("ix_login_identities_user", "login_identities", ["tenant_id", "user_id"])
    op.create_index("ix_login_identities_email", "login_identities", ["tenant_id", "email_key"])
    op.create_table(
        "login_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        _tenant(),
        sa.Column("user_id", ID),
        sa.Column("issuer", CLAIM, nullable=False),
        sa.Column("subject", CLAIM, nullable=False),
        sa.Column("policy", sa.String(24), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_login_decisions_user", "login_decisions",
                    ["tenant_id", "user_id", "id"])
    op.create_table(
        "role_mappings", _tenant(),
        sa.Column("group_ref", CLAIM, nullable=False),
        sa.Column("role", sa.String(200), nullable=False),
        sa.Column("group_ref_key", CLAIM, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "group_ref", "role"),
    )
    op.create_table(
        "user_roles",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(200), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "role", "origin"),
    )


def downgrade() -> None:
    for table in ("user_roles", "role_mappings", "login_decisions", "login_identities",
                  "tenant_login_policies"):
        op.drop_table(table)
    with op.batch_alter_table("user_sessions") as sessions:
        sessions.drop_column("revoked_reason")
    with op.batch_alter_table("resources") as resources:
        resources.drop_column("source")
