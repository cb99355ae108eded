"""The application side: who wrote a resource (SCIM or a JIT login), why a session was
revoked (and session ids unique per tenant), tenants' login policies, login identities and
decisions, group-to-role mappings and the roles they give.

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


SESSION_COLUMNS = ("id", "tenant_id", "user_id", "created_at", "revoked_at")


def _move_sessions(*, primary_key: tuple[str, ...], with_reason: bool) -> None:
    """`user_sessions` again with another primary key (a session id is unique per tenant,
    not across tenants) and with or without `revoked_reason`: a new table, the rows copied."""
    reason = [sa.Column("revoked_reason", sa.String(32))] if with_reason else []
    op.create_table(
        "user_sessions_moved",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        _when("created_at"), _when("revoked_at", nullable=True),
        *reason,
        sa.PrimaryKeyConstraint(*primary_key),
    )
    columns = ", ".join(SESSION_COLUMNS)
    op.execute(f"INSERT INTO user_sessions_moved ({columns}) SELECT {columns} FROM user_sessions")
    op.drop_index("ix_user_sessions_user", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.rename_table("user_sessions_moved", "user_sessions")
    op.create_index("ix_user_sessions_user", "user_sessions", ["tenant_id", "user_id"])


def upgrade() -> None:
    with op.batch_alter_table("resources") as resources:
        resources.add_column(sa.Column("source", sa.String(8), nullable=False,
                                       server_default="scim"))
    _move_sessions(primary_key=("id", "tenant_id"), with_reason=True)
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
    _move_sessions(primary_key=("id",), with_reason=False)
    with op.batch_alter_table("resources") as resources:
        resources.drop_column("source")
