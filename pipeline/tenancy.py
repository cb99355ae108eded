"""Tenant administration and bearer-token authentication, as a service over the store."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from pipeline.ports import Clock, utc_now
from pipeline.store import tenants
from pipeline.store.db import unit_of_work
from pipeline.store.tenants import IssuedToken, TenantRef


class Tenancy:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    def authenticate(self, secret: str) -> TenantRef:
        """The tenant a bearer token belongs to; Unauthorized for unknown or revoked tokens."""
        with unit_of_work(self._sessions) as session:
            return tenants.authenticate(session, secret)

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

    def list(self) -> list[TenantRef]:
        with unit_of_work(self._sessions) as session:
            return tenants.list_tenants(session)
