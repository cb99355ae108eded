"""Tenants and their bearer tokens (stored hashed, several per tenant for rotation).
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import NotFound, Unauthorized, Uniqueness
from scimflow.pipeline.store.models import (
    AcknowledgedRow,
    ApiToken,
    DeadLetter,
    Group,
    JournalEntry,
    JournalWait,
    LoginDecision,
    LoginIdentity,
    LoginPolicy,
    Membership,
    OutboxEvent,
    RoleMapping,
    Tenant,
    TenantSchema,
    User,
    UserRole,
    UserSession,
    WebhookAttempt,
    WebhookEndpoint,
)

TOKEN_PREFIX = "scimflow_"


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token; `secret` is shown once and never stored."""

    id: str
    tenant: TenantRef
    secret: str


@dataclass(frozen=True, slots=True)
class TenantListing:
    id: str
    name: str
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenListing:
    """A token as operators see it: never its secret, which is not stored."""

    id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


# Every table holding a tenant's rows, children before parents.
TENANT_TABLES = (JournalWait, UserSession, OutboxEvent, DeadLetter, Membership, Group, User,
                 AcknowledgedRow, JournalEntry, TenantSchema, ApiToken, WebhookEndpoint,
                 UserRole, RoleMapping, LoginIdentity, LoginDecision, LoginPolicy)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_tenant(session: Session, name: str, *, now: datetime) -> TenantRef:
    tenant = Tenant(id=str(uuid.uuid4()), name=name, created_at=now)
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError:
        raise Uniqueness(f"A tenant named {name!r} already exists.") from None
    return TenantRef(tenant.id, tenant.name)


def find_tenant(session: Session, name_or_id: str) -> TenantRef:
    row = session.execute(
        select(Tenant.id, Tenant.name).where(
            (Tenant.name == name_or_id) | (Tenant.id == name_or_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No tenant {name_or_id!r}.")
    return TenantRef(row.id, row.name)


def list_tenants(session: Session) -> list[TenantListing]:
    rows = session.execute(
        select(Tenant.id, Tenant.name, Tenant.created_at, Tenant.disabled_at)
        .order_by(Tenant.name)
    )
    return [TenantListing(row.id, row.name, row.created_at, row.disabled_at) for row in rows]


def set_disabled(session: Session, tenant: TenantRef, *, disabled_at: datetime | None) -> None:
    session.execute(update(Tenant).where(Tenant.id == tenant.id).values(disabled_at=disabled_at))


def is_disabled(session: Session, tenant: TenantRef) -> bool:
    return session.scalar(select(Tenant.disabled_at).where(Tenant.id == tenant.id)) is not None


def delete_tenant(session: Session, tenant: TenantRef) -> dict[str, int]:
    """Delete the tenant and every row it owns; return the rows deleted per table."""
    counts: dict[str, int] = {}
    endpoints = select(WebhookEndpoint.id).where(WebhookEndpoint.tenant_id == tenant.id)
    attempts = session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.endpoint_id.in_(endpoints))
    )
    counts[WebhookAttempt.__tablename__] = int(attempts.rowcount)  # type: ignore[attr-defined]
    for table in TENANT_TABLES:
        result = session.execute(delete(table).where(table.tenant_id == tenant.id))
        counts[table.__tablename__] = int(result.rowcount)  # type: ignore[attr-defined]
    session.execute(delete(Tenant).where(Tenant.id == tenant.id))
    return counts


def list_tokens(session: Session, tenant: TenantRef) -> list[TokenListing]:
    rows = session.execute(
        select(ApiToken.id, ApiToken.label, ApiToken.created_at, ApiToken.revoked_at)
        .where(ApiToken.tenant_id == tenant.id)
        .order_by(ApiToken.created_at, ApiToken.id)
    )
    return [TokenListing(row.id, row.label, row.created_at, row.revoked_at) for row in rows]


def issue_token(
    session: Session, tenant: TenantRef, *, now: datetime, label: str = ""
) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=str(uuid.uuid4()),
        tenant_id=tenant.id,
        token_hash=token_digest(secret),
        label=label,
        created_at=now,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token.id, tenant, secret)


def revoke_tokens(
    session: Session, tenant: TenantRef, *, now: datetime, token_id: str | None = None
) -> int:
    """Revoke one token of the tenant, or all of them; return how many were revoked.

    A token id that is not one of the tenant's tokens is NotFound (a typo must not look like a
    revocation); revoking an already revoked token revokes nothing.
    """
    statement = update(ApiToken).where(
        ApiToken.tenant_id == tenant.id, ApiToken.revoked_at.is_(None)
    )
    if token_id is not None:
        _require_token(session, tenant, token_id)
        statement = statement.where(ApiToken.id == token_id)
    result = session.execute(statement.values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _require_token(session: Session, tenant: TenantRef, token_id: str) -> None:
    owner = session.scalar(select(ApiToken.tenant_id).where(ApiToken.id == token_id))
    if owner != tenant.id:
        raise NotFound(f"No token {token_id!r} for tenant {tenant.name!r}.")


def authenticate(session: Session, secret: str) -> TenantRef:
    """Map a bearer token to its tenant, or raise Unauthorized.

    The lookup is by the token's SHA-256, so the database never sees the secret, and the final
    comparison is constant-time so response timing reveals nothing about stored digests.
    """
    digest = token_digest(secret)
    row = session.execute(
        select(ApiToken.token_hash, Tenant.id, Tenant.name)
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None),
               Tenant.disabled_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized()
    return TenantRef(row.id, row.name)
