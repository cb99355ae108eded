"""Tenant administration and bearer-token authentication, as a service over the store.
See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.services.credential_cache import CredentialCache
from scimflow.pipeline.store import tenants
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenants import IssuedToken, TenantListing, TenantRef, TokenListing


class Tenancy:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock = utc_now,
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: CredentialCache[TenantRef] = CredentialCache(cache_seconds, monotonic)

    def authenticate(self, secret: str) -> TenantRef:
        """The tenant a bearer token belongs to; Unauthorized for unknown or revoked tokens.

        A token that authenticated recently is remembered for `cache_seconds`, sparing every
        request of a busy IdP a query; a revocation therefore takes effect within that time.
        Failures are never cached.
        """
        digest = tenants.token_digest(secret)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        with unit_of_work(self._sessions) as session:
            tenant = tenants.authenticate(session, secret)
        self._cache.put(digest, tenant)
        return tenant

    def create(self, name: str) -> IssuedToken:
        """A new tenant and its first token."""
        with unit_of_work(self._sessions) as session:
            tenant = tenants.create_tenant(session, name, now=self._clock())
            return tenants.issue_token(session, tenant, now=self._clock(), label="initial")

    def rotate(self, name_or_id: str, *, revoke_others: bool = False) -> IssuedToken:
        """Issue a new token; the old ones keep working unless `revoke_others`."""
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, name_or_id)
            if revoke_others:
                tenants.revoke_tokens(session, tenant, now=self._clock())
            return tenants.issue_token(session, tenant, now=self._clock(), label="rotated")

    def revoke(self, name_or_id: str, token_id: str | None = None) -> int:
        """Revoke one token, or every token of the tenant; return how many."""
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, name_or_id)
            return tenants.revoke_tokens(session, tenant, now=self._clock(), token_id=token_id)

    def find(self, name_or_id: str) -> TenantRef:
        with unit_of_work(self._sessions) as session:
            return tenants.find_tenant(session, name_or_id)

    def all(self) -> list[TenantListing]:
        with unit_of_work(self._sessions) as session:
            return tenants.list_tenants(session)

    def tokens(self, name_or_id: str) -> list[TokenListing]:
        with unit_of_work(self._sessions) as session:
            return tenants.list_tokens(session, tenants.find_tenant(session, name_or_id))

    def disable(self, name_or_id: str) -> TenantRef:
        """Stop the tenant's tokens authenticating (API processes notice within the token
        cache time); what it already sent is still applied."""
        return self._set_disabled(name_or_id, disabled=True)

    def enable(self, name_or_id: str) -> TenantRef:
        return self._set_disabled(name_or_id, disabled=False)

    def _set_disabled(self, name_or_id: str, *, disabled: bool) -> TenantRef:
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, name_or_id)
            tenants.set_disabled(session, tenant, disabled_at=self._clock() if disabled else None)
            return tenant

    def delete(self, name_or_id: str) -> tuple[TenantRef, dict[str, int]]:
        """Delete a disabled tenant and all its data; an enabled one is refused, so no IdP is
        still writing while its rows go."""
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, name_or_id)
            if not tenants.is_disabled(session, tenant):
                raise TenantStillEnabled(tenant)
            return tenant, tenants.delete_tenant(session, tenant)


class TenantStillEnabled(ScimError):
    status = 409

    def __init__(self, tenant: TenantRef) -> None:
        super().__init__(
            f"Tenant {tenant.name!r} is enabled: disable it first"
            f" (scimflow tenant disable {tenant.name})."
        )
