"""The tables of the application side: login policies, the identities logins came with, every
login decision, group-to-role mappings and the roles they give.
See docs/ARCHITECTURE.md ("The application side").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from scimflow.pipeline.store.base import Base, BigId, Id

# What an issuer, a subject, an email or a group reference may hold (as the directory's columns).
CLAIM = String(512)


class LoginPolicy(Base):
    """How a tenant's logins and its SCIM provisioning coexist (`pipeline/login_rules.py`)."""

    __tablename__ = "tenant_login_policies"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(24))
    # The identity providers whose assertions the application may pass on (their `iss`).
    issuers: Mapped[list[str]] = mapped_column(JSON)
    match_verified_email: Mapped[bool] = mapped_column(Boolean)
    sync_attributes: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class LoginIdentity(Base):
    """An identity (issuer, subject) a login came with, and the user it is linked to. Kept when
    the user is deleted: a later login of that identity is then denied, never re-created."""

    __tablename__ = "login_identities"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(CLAIM, primary_key=True)
    subject: Mapped[str] = mapped_column(CLAIM, primary_key=True)
    user_id: Mapped[str] = mapped_column(Id)
    # `fold_key` of a verified email, for tenants that match on it.
    email_key: Mapped[str | None] = mapped_column(CLAIM)
    group_claims: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_login_identities_user", "tenant_id", "user_id"),
        Index("ix_login_identities_email", "tenant_id", "email_key"),
    )


class LoginDecision(Base):
    """One login and what was decided, for the user's history."""

    __tablename__ = "login_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(Id)
    issuer: Mapped[str] = mapped_column(CLAIM)
    subject: Mapped[str] = mapped_column(CLAIM)
    policy: Mapped[str] = mapped_column(String(24))
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_login_decisions_user", "tenant_id", "user_id", "id"),)


class RoleMapping(Base):
    """A group (its id, externalId or displayName) giving a role."""

    __tablename__ = "role_mappings"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    group_ref: Mapped[str] = mapped_column(CLAIM, primary_key=True)
    role: Mapped[str] = mapped_column(String(200), primary_key=True)
    # `fold_key(group_ref)`: matches a displayName as the groups' unique key compares them.
    group_ref_key: Mapped[str] = mapped_column(CLAIM)
    created_at: Mapped[datetime]


# Where a role comes from: the SCIM groups a user is an applied member of, or (for a user SCIM
# does not own) the group claims of the user's last login.
FROM_GROUPS = "groups"
# Joins a user's roles in one column of a session check (a role holds no control character).
ROLE_SEPARATOR = "\x1f"
FROM_CLAIMS = "claims"


class UserRole(Base):
    """A role a user holds, as last computed (read by every session check)."""

    __tablename__ = "user_roles"

    tenant_id: Mapped[str] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(Id, primary_key=True)
    role: Mapped[str] = mapped_column(String(200), primary_key=True)
    origin: Mapped[str] = mapped_column(String(8), primary_key=True)
