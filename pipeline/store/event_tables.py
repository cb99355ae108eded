"""The tables of telling applications what changed: the outbox of events, its commit-ordered
positions, webhook endpoints and their delivery attempts, application keys, SET signing keys.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from scimflow.pipeline.store.base import Base, BigId, Id

EVENT_ID = String(40)


class EventPosition(Base):
    """The last position handed to an event: one row, updated at the end of each applying
    transaction, so its row lock orders the positions as the transactions commit."""

    __tablename__ = "event_positions"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)


COUNTER = "outbox"
# The counter's row exists from the start, whether the schema came from the migrations (which
# insert it) or from `create_all` (tests, tools).
event.listen(
    EventPosition.__table__, "after_create",
    DDL(f"INSERT INTO event_positions (name, last) VALUES ('{COUNTER}', 0)"),  # type: ignore[no-untyped-call]
)


class OutboxEvent(Base):
    """A change to tell the application about, written in the transaction that applied it.

    `id` is the event's position: commit-ordered (see `EventPosition`), so a reader that has
    seen position N never later finds a new event below N. `payload` is the whole event
    document (`pipeline/events/model.py`).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(EVENT_ID, unique=True)
    tenant_id: Mapped[str] = mapped_column(Id)
    event_type: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(Id)
    journal_seq: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    __table_args__ = (
        # A tenant's events in order (webhook delivery, the events API scoped to tenants).
        Index("ix_outbox_tenant_position", "tenant_id", "id"),
        # Retention prunes the oldest first.
        Index("ix_outbox_created_at", "created_at"),
    )


class WebhookEndpoint(Base):
    """Where a tenant's events are pushed, and how far delivery has come."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    # Patterns such as "user.*" or "group.member_added"; ["*"] for every event.
    event_types: Mapped[list[str]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(8))  # "json" (Standard Webhooks) or "set"
    # [{"secret": "whsec_…", "expires_at": ISO time or None}]: all sign during a rotation.
    secrets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Every event at or below this position was delivered (or did not match the endpoint).
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Backoff: nothing is sent before this moment; set after a failed attempt.
    next_attempt_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # A delivery task holds the endpoint until then; a killed worker's lease simply expires.
    lease_until: Mapped[datetime | None]
    # Whose lease it is: a task whose lease ran out writes nothing over its successor's.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    # When beat last rang for it: it rings again only once that doorbell had time to work.
    rung_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One attempt to deliver one event to one endpoint, as it went."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(Id)
    event_position: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(EVENT_ID)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_attempts_attempted_at", "attempted_at"),
    )


class AppKey(Base):
    """An application's credential for the events and application APIs, stored as SHA-256;
    never a tenant's SCIM token. `tenants` limits it to some tenants (None: every tenant)."""

    __tablename__ = "app_keys"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    tenants: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class EventSigningKey(Base):
    """A key that signs Security Event Tokens; its public half is published as a JWKS."""

    __tablename__ = "event_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
