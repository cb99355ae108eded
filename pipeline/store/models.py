"""The database schema (SQLAlchemy 2.0 declarative). Changes go through Alembic migrations.

Group members are not kept in `resources`, so a 10,000-member group is never loaded to add one
member. See docs/ARCHITECTURE.md ("Two views of the directory").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from scimflow.pipeline.store.app_tables import (
    LoginDecision,
    LoginIdentity,
    LoginPolicy,
    RoleMapping,
    UserRole,
)
from scimflow.pipeline.store.base import Base, BigId, Id, UtcDateTime

# The event tables live in their own module; importing them here puts them in Base.metadata
# wherever the schema is used (migrations, create_all, the tests).
from scimflow.pipeline.store.event_tables import (
    AppKey,
    EventPosition,
    EventSigningKey,
    OutboxEvent,
    WebhookAttempt,
    WebhookEndpoint,
)
from scimflow.pipeline.store.feed_tables import EventFeed, EventFeedAck  # noqa: F401

__all__ = [
    "AcknowledgedRow", "ApiToken", "AppKey", "Base", "BigId", "ConsoleSessionRow", "DeadLetter",
    "EventPosition", "EventSigningKey", "Group", "Id", "JournalEntry", "JournalWait",
    "LoginDecision", "LoginIdentity", "LoginPolicy", "Membership", "OperatorRow", "OutboxEvent",
    "PipelineHeartbeat", "RoleMapping", "Tenant", "TenantIdp", "TenantRefusals", "TenantSchema",
    "User", "UserRole", "UserSession", "UtcDateTime", "WebhookAttempt", "WebhookEndpoint",
]


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    # A disabled tenant's tokens stop authenticating; what it sent before still applies.
    disabled_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256 (tokens are random, 256 bits)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TenantSchema(Base):
    """An extension schema a tenant declared (RFC 7643 §7 representation) for a resource type."""

    __tablename__ = "tenant_schemas"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    schema_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AcknowledgedRow(Base):
    """The acknowledged state of one user or group, and its reserved unique keys."""

    __tablename__ = "resources"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]]
    # Unique keys, normalised: userName and group displayName are case-insensitive (caseExact
    # false), externalId is case-exact (RFC 7643 §3.1).
    user_name_key: Mapped[str | None] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
    display_name_key: Mapped[str | None] = mapped_column(String(512))
    # The payload digest of the POST that created it: a retried POST with the same
    # externalId and the same payload gets the original resource back.
    create_digest: Mapped[str | None] = mapped_column(String(64))
    # Who wrote it: "scim", or "jit" for a user a login created, until SCIM's first write to
    # it claims it (docs/APPLICATIONS.md).
    source: Mapped[str] = mapped_column(String(8), default="scim", server_default="scim")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        # Each unique index is led by its key, and probes name the tenant and the key only
        # (`store/unique_lookup.py`): every other index then matches the tenant alone, so a
        # probe stays one index probe even on a table PostgreSQL has never analysed (a large
        # initial sync fills it faster than autovacuum looks). userName and displayName keys
        # are only ever set on users and groups respectively; externalId is unique per type.
        Index("uq_resources_user_name", "user_name_key", "tenant_id", unique=True),
        Index("uq_resources_display_name", "display_name_key", "tenant_id", unique=True),
        Index(
            "uq_resources_external_id", "external_id", "tenant_id", "resource_type", unique=True
        ),
        # List pages in the default stable order (pipeline/store/search.py) walk this index
        # instead of sorting the whole tenant for each page.
        Index("ix_resources_listing", "tenant_id", "resource_type", "created_at", "id"),
    )


class JournalEntry(Base):
    """One accepted command. `seq` orders the commands of a resource (and of a tenant)."""

    __tablename__ = "journal"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    resource_id: Mapped[str] = mapped_column(Id)
    resource_type: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(10))
    command: Mapped[dict[str, Any]]
    # pending -> applied | dead
    status: Mapped[str] = mapped_column(String(10), default="pending")
    # 0 = deprovisioning (security-relevant, drained first), 1 = everything else.
    lane: Mapped[int] = mapped_column(SmallInteger, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_journal_resource", "tenant_id", "resource_id", "seq"),
        # The recent drain rate (admission control's Retry-After) counts by applied_at.
        Index("ix_journal_applied_at", "applied_at"),
        # The operator view (pipeline/store/overview.py): a tenant's last write received, and
        # its last applied entry and recent deprovisioning latency per lane, each one probe.
        Index("ix_journal_tenant_created", "tenant_id", "created_at"),
        Index("ix_journal_tenant_applied", "tenant_id", "lane", "applied_at"),
        # The entries that failed at least once and wait to be retried: nearly always none,
        # so the index is nearly empty and an acknowledgement never writes to it.
        Index(
            "ix_journal_retrying",
            "tenant_id",
            postgresql_where=text("status = 'pending' AND attempts > 0"),
            sqlite_where=text("status = 'pending' AND attempts > 0"),
        ),
        Index(
            "ix_journal_pending",
            "lane",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # Fair claiming (store/claim.py) finds the tenants with pending work by a skip scan
        # over this index and reads each one's oldest entries from it.
        Index(
            "ix_journal_pending_tenant",
            "tenant_id",
            "lane",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class JournalWait(Base):
    """A postponed journal entry waiting for a resource (a group member) to be applied.

    When that resource lands, exactly the entries waiting for it are made due again; others
    keep their backoff and their retry budget.
    """

    __tablename__ = "journal_waits"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Id)
    resource_id: Mapped[str] = mapped_column(Id, primary_key=True)

    __table_args__ = (Index("ix_journal_waits_resource", "tenant_id", "resource_id"),)


class User(Base):
    """An applied user. `data` is the canonical resource; columns repeat what is queried."""

    __tablename__ = "users"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(512))
    # `fold_key(user_name)`, computed in Python: the one folding rule acceptance uses too, so
    # the two can never disagree on which spellings are one userName (pipeline/scim/unicode.py).
    user_name_key: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
    display_name: Mapped[str | None] = mapped_column(String(512))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    journal_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_users_user_name_key", "tenant_id", "user_name_key", unique=True),
        Index("uq_users_external_id", "tenant_id", "external_id", unique=True),
    )


class Group(Base):
    """An applied group; its members live in `memberships`."""

    __tablename__ = "groups"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(512))
    # `fold_key(display_name)`, as for `User.user_name_key`.
    display_name_key: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512))
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    journal_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_groups_display_name_key", "tenant_id", "display_name_key", unique=True),
        Index("uq_groups_external_id", "tenant_id", "external_id", unique=True),
    )


class Membership(Base):
    """One member of one group (a user or a nested group), written set-based."""

    __tablename__ = "memberships"

    tenant_id: Mapped[str] = mapped_column(Id, primary_key=True)
    group_id: Mapped[str] = mapped_column(Id, primary_key=True)
    member_id: Mapped[str] = mapped_column(Id, primary_key=True)
    member_type: Mapped[str] = mapped_column(String(16))
    display: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "group_id"], ["groups.tenant_id", "groups.id"], ondelete="CASCADE"
        ),
        Index("ix_memberships_member", "tenant_id", "member_id"),
    )


class UserSession(Base):
    """An application session of a user; deprovisioning revokes them in the apply transaction."""

    __tablename__ = "user_sessions"

    # The application's own id, unique within its tenant (another tenant may use it too).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(Id)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # "deprovisioned", "deleted" or "application" (revoked through the application API).
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_user_sessions_user", "tenant_id", "user_id"),)


class PipelineHeartbeat(Base):
    """When the pipeline last moved (`drain`, `sweep`): pipeline/services/liveness.py reads it."""

    __tablename__ = "pipeline_heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    beat_at: Mapped[datetime]


class DeadLetter(Base):
    """A command that could not be applied within its retry budget, kept for operators."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journal_seq: Mapped[int] = mapped_column(BigInteger, index=True)
    tenant_id: Mapped[str] = mapped_column(Id, index=True)
    resource_id: Mapped[str] = mapped_column(Id)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]
    replay_seq: Mapped[int | None] = mapped_column(BigInteger)
    # Settled without applying (an operator discarded it); kept for the record.
    discarded_at: Mapped[datetime | None]

    # Retention (store/retention.py) prunes dead letters oldest first.
    __table_args__ = (Index("ix_dead_letters_created_at", "created_at"),)


class OperatorRow(Base):
    """An operator of the console: not a tenant, never valid on /scim/v2."""

    __tablename__ = "operators"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(200))
    # `fold_key(username)`: usernames are one account whatever their case.
    username_key: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ConsoleSessionRow(Base):
    """A signed-in console session, stored only as the SHA-256 of its cookie token."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class TenantIdp(Base):
    """The IdP a tenant's SCIM requests last came from (by their User-Agent)."""

    __tablename__ = "tenant_idps"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    dialect: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[datetime]


class TenantRefusals(Base):
    """How many requests of a tenant were refused with 429 in one minute."""

    __tablename__ = "tenant_refusals"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    refused: Mapped[int] = mapped_column(Integer)
