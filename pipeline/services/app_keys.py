"""Application keys as a service: issuing, listing, revoking, and authenticating them with a
short cache (as `tenancy.Tenancy` does for the tenants' tokens).
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.services.credential_cache import CredentialCache
from scimflow.pipeline.store import app_keys
from scimflow.pipeline.store.app_keys import AppGrant, AppKeyListing, IssuedAppKey
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenants import token_digest


class AppKeys:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock = utc_now,
        cache_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: CredentialCache[AppGrant] = CredentialCache(cache_seconds, monotonic)

    def create(self, *, label: str = "", tenants: Sequence[str] | None = None) -> IssuedAppKey:
        """A new key for these tenants (names or ids; None: every tenant, now and later)."""
        with unit_of_work(self._sessions) as session:
            tenant_ids = None if tenants is None else app_keys.resolve_tenants(session, tenants)
            return app_keys.create_key(session, now=self._clock(), label=label,
                                       tenant_ids=tenant_ids)

    def list(self) -> builtins.list[AppKeyListing]:
        with unit_of_work(self._sessions) as session:
            return app_keys.list_keys(session)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key (API processes notice within `cache_seconds`); False if it already was."""
        with unit_of_work(self._sessions) as session:
            return app_keys.revoke_key(session, key_id, now=self._clock())

    def authenticate(self, key: str) -> AppGrant | None:
        """The grant of a valid key, or None. A key that authenticated recently is remembered
        for `cache_seconds`, so a revocation takes effect within that time; failures are never
        cached."""
        digest = token_digest(key)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        with unit_of_work(self._sessions) as session:
            grant = app_keys.find_grant(session, key)
        if grant is not None:
            self._cache.put(digest, grant)
        return grant
