"""Tenants and their bearer tokens (stored hashed, several per tenant for rotation)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import NotFound, Unauthorized, Uniqueness
from scimflow.pipeline.store.models import ApiToken, Tenant

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


def list_tenants(session: Session) -> list[TenantRef]:
    rows = session.execute(select(Tenant.id, Tenant.name).order_by(Tenant.name))
    return [TenantRef(row.id, row.name) for row in rows]


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
    """Revoke one token of the tenant, or all of them; return how many were revoked."""
    statement = update(ApiToken).where(
        ApiToken.tenant_id == tenant.id, ApiToken.revoked_at.is_(None)
    )
    if token_id is not None:
        statement = statement.where(ApiToken.id == token_id)
    result = session.execute(statement.values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def authenticate(session: Session, secret: str) -> TenantRef:
    """Map a bearer token to its tenant, or raise Unauthorized.

    The lookup is by the token's SHA-256, so the database never sees the secret, and the final
    comparison is constant-time so response timing reveals nothing about stored digests.
    """
    digest = token_digest(secret)
    row = session.execute(
        select(ApiToken.token_hash, Tenant.id, Tenant.name)
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized()
    return TenantRef(row.id, row.name)
