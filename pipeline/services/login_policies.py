"""Tenants' login policies as a service (`scimflow tenant policy`).
See docs/APPLICATIONS.md ("Choosing a login policy").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import InvalidValue
from scimflow.pipeline.login_rules import LoginPolicy, Mode
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.scim.unicode import is_storable_text
from scimflow.pipeline.store import logins, tenants
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenants import TenantRef

MAX_ISSUER = 512


class LoginPolicies:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    def get(self, tenant_name_or_id: str) -> tuple[TenantRef, LoginPolicy]:
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, tenant_name_or_id)
            return tenant, logins.policy_of(session, tenant.id)

    def update(
        self,
        tenant_name_or_id: str,
        *,
        mode: str | None = None,
        issuers: Sequence[str] | None = None,
        match_verified_email: bool | None = None,
        sync_attributes: bool | None = None,
    ) -> tuple[TenantRef, LoginPolicy]:
        """Change what is given; keep the rest (the default policy for a tenant without one)."""
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, tenant_name_or_id)
            policy = logins.policy_of(session, tenant.id)
            if mode is not None:
                policy = replace(policy, mode=_mode(mode))
            if issuers is not None:
                policy = replace(policy, issuers=_issuers(issuers))
            if match_verified_email is not None:
                policy = replace(policy, match_verified_email=match_verified_email)
            if sync_attributes is not None:
                policy = replace(policy, sync_attributes=sync_attributes)
            logins.set_policy(session, tenant.id, policy, now=self._clock())
        return tenant, policy


def _mode(name: str) -> Mode:
    try:
        return Mode(name)
    except ValueError:
        known = ", ".join(mode.value for mode in Mode)
        raise InvalidValue(f"Unknown login policy {name!r}; one of: {known}.") from None


def _issuers(issuers: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(issuer.strip() for issuer in issuers))
    if any(not issuer or len(issuer) > MAX_ISSUER or not is_storable_text(issuer)
           for issuer in cleaned):
        raise InvalidValue(f"An issuer is 1 to {MAX_ISSUER} characters.")
    return cleaned
