"""Application keys: the credentials of the events API and the application API, stored as
SHA-256 digests in `app_keys`, never in the tenants' `api_tokens` (a SCIM token is no app key).
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.store.event_tables import AppKey
from scimflow.pipeline.store.tenants import find_tenant, token_digest

KEY_PREFIX = "sfk_"
# 32 random bytes are 43 url-safe base64 characters: 256 bits, as the tenants' tokens.
KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedAppKey:
    """A new key; `key` is shown once and never stored. `tenants`: ids (None: every tenant)."""

    id: str
    key: str
    tenants: list[str] | None


@dataclass(frozen=True, slots=True)
class AppKeyListing:
    """A key as operators see it: never the key itself, which is not stored."""

    id: str
    label: str
    tenants: list[str] | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AppGrant:
    """What an authenticated key may read: `tenants` ids, or None for every tenant."""

    key_id: str
    tenants: frozenset[str] | None

    def allows(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants


def resolve_tenants(session: Session, names_or_ids: Sequence[str]) -> list[str]:
    """Tenant ids, in the order given, without repeats; an unknown tenant is NotFound."""
    resolved: list[str] = []
    for name_or_id in names_or_ids:
        tenant_id = find_tenant(session, name_or_id).id
        if tenant_id not in resolved:
            resolved.append(tenant_id)
    return resolved


def create_key(
    session: Session, *, now: datetime, label: str = "", tenant_ids: list[str] | None = None
) -> IssuedAppKey:
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = AppKey(id=str(uuid.uuid4()), key_hash=token_digest(key), label=label,
                 tenants=tenant_ids, created_at=now)
    session.add(row)
    session.flush()
    return IssuedAppKey(row.id, key, tenant_ids)


def list_keys(session: Session) -> list[AppKeyListing]:
    rows = session.execute(
        select(AppKey.id, AppKey.label, AppKey.tenants, AppKey.created_at, AppKey.revoked_at)
        .order_by(AppKey.created_at, AppKey.id)
    )
    return [AppKeyListing(row.id, row.label, row.tenants, row.created_at, row.revoked_at)
            for row in rows]


def revoke_key(session: Session, key_id: str, *, now: datetime) -> bool:
    """Revoke a key; False when it was revoked already. An unknown id is NotFound (a typo
    must not look like a revocation)."""
    if session.scalar(select(AppKey.id).where(AppKey.id == key_id)) is None:
        raise NotFound(f"No application key {key_id!r}.")
    result = session.execute(
        update(AppKey).where(AppKey.id == key_id, AppKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def find_grant(session: Session, key: str) -> AppGrant | None:
    """The grant of an unrevoked key, or None. Looked up by digest, so the database never sees
    the key; the final comparison is constant-time, as for the tenants' tokens."""
    digest = token_digest(key)
    row = session.execute(
        select(AppKey.id, AppKey.key_hash, AppKey.tenants)
        .where(AppKey.key_hash == digest, AppKey.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return AppGrant(row.id, None if row.tenants is None else frozenset(row.tenants))
