"""Group-to-role mappings as a service (the `scimflow roles` commands): mapping or unmapping a
group recomputes the roles of its members at once, and each user whose roles changed gets a
`user.roles_changed` event. See docs/APPLICATIONS.md ("Roles").
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import InvalidValue
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.scim.unicode import fold_key, is_storable_text
from scimflow.pipeline.services.change_events import PendingEvent, outbox_rows, roles_changed
from scimflow.pipeline.store import directory, logins, outbox, roles, tenants
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.roles import Mapping, RoleChange
from scimflow.pipeline.store.tenants import TenantRef

MAX_ROLE = 200
MAX_GROUP_REF = 512


@dataclass(frozen=True, slots=True)
class MappingChange:
    tenant: TenantRef
    changed: int  # mappings added or removed
    users: int  # users whose roles changed


class RoleMappings:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    def map(self, tenant_name_or_id: str, group: str, role: str) -> MappingChange:
        """Give the members of `group` (its id, externalId or displayName) the role `role`."""
        _check(group, role)
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, tenant_name_or_id)
            added = roles.add_mapping(session, tenant.id, group, role, now=self._clock())
            users = self._recompute(session, tenant, group)
        return MappingChange(tenant, int(added), users)

    def unmap(self, tenant_name_or_id: str, group: str, role: str | None) -> MappingChange:
        """Remove `group`'s mapping to `role` (to every role if None)."""
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, tenant_name_or_id)
            removed = roles.remove_mapping(session, tenant.id, group, role)
            users = self._recompute(session, tenant, group)
        return MappingChange(tenant, removed, users)

    def list(self, tenant_name_or_id: str) -> tuple[TenantRef, builtins.list[Mapping]]:
        with unit_of_work(self._sessions) as session:
            tenant = tenants.find_tenant(session, tenant_name_or_id)
            return tenant, roles.mappings(session, tenant.id)

    def _recompute(self, session: Session, tenant: TenantRef, group: str) -> int:
        """Recompute the roles of everyone `group` can name: members of the groups it matches,
        and users SCIM does not own whose last login claimed it."""
        changes = roles.refresh_from_groups(
            session, roles.members_of_mapped_groups(session, tenant.id, group),
            unmapped_too=True)
        key = fold_key(group)
        for user_id, claims in logins.identities_with_claims(session, tenant.id):
            if group in claims or key in {fold_key(claim) for claim in claims}:
                change = roles.set_claim_roles(session, tenant.id, user_id, claims)
                changes.extend([change] if change else [])
        outbox.append(session, outbox_rows(self._events(session, changes), self._clock()))
        return len({(c.tenant_id, c.user_id) for c in changes})

    @staticmethod
    def _events(
        session: Session, changes: builtins.list[RoleChange]
    ) -> builtins.list[PendingEvent]:
        facts = directory.user_identities(session, [(c.tenant_id, c.user_id) for c in changes])
        return [
            roles_changed(change, version=facts[key][0], identity=facts[key][1])
            for change in changes if (key := (change.tenant_id, change.user_id)) in facts
        ]


def _check(group: str, role: str) -> None:
    if not group.strip() or len(group) > MAX_GROUP_REF or not is_storable_text(group):
        raise InvalidValue(f"A group is named by 1 to {MAX_GROUP_REF} characters.")
    if not role.strip() or len(role) > MAX_ROLE or not role.isprintable():
        raise InvalidValue(f"A role is 1 to {MAX_ROLE} printable characters.")
