"""Events for applications: a commit-ordered outbox, webhook endpoints and their attempts,
application keys and the keys that sign Security Event Tokens.

The outbox is recreated: its earlier rows had no documented shape and nothing ever read them.
Its `id` is now the event's position, handed out from `event_positions` at the end of the
applying transaction (so positions follow commit order), and retention counts from
`created_at` instead of a single `delivered_at` (several consumers read the same events).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("outbox")
    _create_outbox()
    op.create_table(
        "event_positions",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("last", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(
        sa.table("event_positions", sa.column("name", sa.String), sa.column("last", sa.BigInteger)),
        [{"name": "outbox", "last": 0}],
    )
    _create_webhooks()
    _create_keys()


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", _BIG_ID, autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("journal_seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_outbox_tenant_position", "outbox", ["tenant_id", "id"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def _create_webhooks() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36),
                  sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("disabled_at", _WHEN, nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", _WHEN, nullable=True),
        sa.Column("failing_since", _WHEN, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lease_until", _WHEN, nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("rung_at", _WHEN, nullable=True),
    )
    op.create_index("ix_webhook_endpoints_tenant_id", "webhook_endpoints", ["tenant_id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.String(36), nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("attempted_at", _WHEN, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_attempts_endpoint", "webhook_attempts", ["endpoint_id", "id"])
    op.create_index("ix_webhook_attempts_attempted_at", "webhook_attempts", ["attempted_at"])


def _create_keys() -> None:
    op.create_table(
        "app_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("revoked_at", _WHEN, nullable=True),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "event_signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("retired_at", _WHEN, nullable=True),
    )


def downgrade() -> None:
    for table in ("event_signing_keys", "app_keys", "webhook_attempts", "webhook_endpoints",
                  "event_positions", "outbox"):
        op.drop_table(table)
    op.create_table(
        "outbox",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("journal_seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("delivered_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for name, column, where in (
        ("ix_outbox_undelivered", "id", "delivered_at IS NULL"),
        ("ix_outbox_undelivered_journal_seq", "journal_seq", "delivered_at IS NULL"),
        ("ix_outbox_delivered_at", "delivered_at", "delivered_at IS NOT NULL"),
    ):
        op.create_index(name, "outbox", [column], postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))
