"""What the application API says of a tenant's users: who a reference names (a scimflow id, an
externalId or a userName), a user with its roles, and its history (SCIM commands and login
decisions). See docs/APPLICATIONS.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import Forbidden, InvalidValue, NotFound
from scimflow.pipeline.scim.unicode import is_storable_text
from scimflow.pipeline.services.credential_cache import CredentialCache
from scimflow.pipeline.store import acknowledged, journal, logins, roles, tenants
from scimflow.pipeline.store.acknowledged import SCIM, AcknowledgedResource
from scimflow.pipeline.store.db import autocommit_sessions, unit_of_work
from scimflow.pipeline.store.journal import HistoryEntry
from scimflow.pipeline.store.logins import RecordedDecision
from scimflow.pipeline.store.tenants import TenantRef

USER = "User"
# The user references an application may name a user by.
REFERENCES = ("id", "externalId", "userName")
HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class AppUser:
    """A user as the application sees it: acknowledged state and roles."""

    id: str
    user_name: str | None
    external_id: str | None
    active: bool
    roles: tuple[str, ...]
    source: str  # "scim", or "jit" until SCIM claims the user


@dataclass(frozen=True, slots=True)
class UserHistory:
    user: AppUser | None
    commands: list[HistoryEntry]
    logins: list[RecordedDecision]


def app_user(resource: AcknowledgedResource, held: tuple[str, ...]) -> AppUser:
    return user_from(resource.id, resource.data, held, resource.source)


def user_from(
    user_id: str, data: Mapping[str, Any], held: tuple[str, ...], source: str
) -> AppUser:
    """A user as the application sees it, from its acknowledged representation."""
    return AppUser(user_id, data.get("userName"), data.get("externalId"), is_active(data),
                   held, source)


def is_active(data: Mapping[str, Any]) -> bool:
    """RFC 7643 `active`: a user is active unless it says otherwise."""
    return data.get("active", True) is not False


def find_user(
    session: Session, tenant_id: str, reference: Mapping[str, Any]
) -> AcknowledgedResource:
    """The user a reference names (`{"id": …}`, `{"externalId": …}` or `{"userName": …}`)."""
    named = {k: v for k, v in reference.items() if k in REFERENCES}
    if len(named) != 1 or not isinstance(next(iter(named.values())), str):
        raise InvalidValue("Name the user by exactly one of id, externalId or userName (strings).")
    (kind, value), = named.items()
    if not is_storable_text(value):
        raise NotFound(f"No user with {kind} {value!r} in this tenant.")
    if kind == "id":
        found = acknowledged.get(session, tenant_id, USER, value)
    elif kind == "externalId":
        found = acknowledged.find_user(session, tenant_id, external_id=value)
    else:
        found = acknowledged.find_user(session, tenant_id, user_names=[value])
    if found is None:
        raise NotFound(f"No user with {kind} {value!r} in this tenant.")
    return found


class AppTenants:
    """The tenant an application names in the path (by name or id), remembered briefly: the
    session check runs on every request of the application."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = autocommit_sessions(sessions)
        self._cache: CredentialCache[TenantRef] = CredentialCache(cache_seconds, monotonic)

    def find(self, name_or_id: str) -> TenantRef:
        cached = self._cache.get(name_or_id)
        if cached is not None:
            return cached
        if not is_storable_text(name_or_id):
            raise NotFound(f"No tenant {name_or_id!r}.")
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, name_or_id)
            # A disabled tenant is on its way out (`tenant delete` wants it disabled first):
            # its application may no longer write through it, as its IdP may not.
            if tenants.is_disabled(session, tenant):
                raise Forbidden(f"Tenant {tenant.name!r} is disabled.")
        self._cache.put(name_or_id, tenant)
        return tenant


class AppUsers:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = autocommit_sessions(sessions)

    def get(self, tenant: TenantRef, reference: Mapping[str, Any]) -> AppUser:
        with unit_of_work(self._sessions) as session:
            found = find_user(session, tenant.id, reference)
            held = roles.roles_of(session, [(tenant.id, found.id)])
        return app_user(found, held.get((tenant.id, found.id), ()))

    def history(self, tenant: TenantRef, user_id: str) -> UserHistory:
        """A user's SCIM commands and login decisions (also of a user deleted since)."""
        if not is_storable_text(user_id):
            raise NotFound(f"No user {user_id!r} in this tenant.")
        with unit_of_work(self._sessions) as session:
            found = acknowledged.get(session, tenant.id, USER, user_id)
            commands = journal.history(session, tenant.id, user_id, resource_type=USER,
                                       limit=HISTORY_LIMIT)
            decisions = logins.decisions_of(session, tenant.id, user_id)
            held = roles.roles_of(session, [(tenant.id, user_id)])
        if found is None and not commands and not decisions:
            raise NotFound(f"No user {user_id!r} in this tenant.")
        user = None if found is None else app_user(found, held.get((tenant.id, user_id), ()))
        return UserHistory(user, commands, decisions)


def is_scim_owned(resource: AcknowledgedResource) -> bool:
    return resource.source == SCIM
