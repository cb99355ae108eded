"""Group-to-role mappings (`role_mappings`) and the roles they give (`user_roles`).

A user's roles are the union of two origins: the roles of the SCIM groups it is an applied
member of (recomputed, set-based, by the transaction that changes its memberships), and, for a
user SCIM does not own, the roles of the group claims of its last login. A mapping names a
group by its id, its externalId (Entra's group object id) or its displayName (folded as the
groups' unique key folds it). See docs/APPLICATIONS.md ("Roles").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.app_tables import FROM_CLAIMS, FROM_GROUPS, RoleMapping, UserRole
from scimflow.pipeline.store.bulk import pairs_in
from scimflow.pipeline.store.models import Group, Membership

Key = tuple[str, str]  # (tenant_id, user_id)


@dataclass(frozen=True, slots=True)
class Mapping:
    group: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoleChange:
    tenant_id: str
    user_id: str
    before: tuple[str, ...]
    after: tuple[str, ...]


def add_mapping(
    session: Session, tenant_id: str, group_ref: str, role: str, *, now: datetime
) -> bool:
    """Map a group to a role; False when that mapping exists already."""
    exists = session.scalar(select(RoleMapping.role).where(
        RoleMapping.tenant_id == tenant_id, RoleMapping.group_ref == group_ref,
        RoleMapping.role == role))
    if exists is not None:
        return False
    session.execute(insert(RoleMapping).values(
        tenant_id=tenant_id, group_ref=group_ref, role=role, group_ref_key=fold_key(group_ref),
        created_at=now))
    return True


def remove_mapping(session: Session, tenant_id: str, group_ref: str, role: str | None) -> int:
    """Remove a group's mapping to `role` (every role of the group if None); how many. The
    group is named as it was mapped, or by another case of that name."""
    statement = delete(RoleMapping).where(
        RoleMapping.tenant_id == tenant_id,
        or_(RoleMapping.group_ref == group_ref, RoleMapping.group_ref_key == fold_key(group_ref)))
    if role is not None:
        statement = statement.where(RoleMapping.role == role)
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def mappings(session: Session, tenant_id: str) -> list[Mapping]:
    rows = session.execute(
        select(RoleMapping.group_ref, RoleMapping.role, RoleMapping.created_at)
        .where(RoleMapping.tenant_id == tenant_id)
        .order_by(RoleMapping.group_ref, RoleMapping.role)
    )
    return [Mapping(*row) for row in rows]


def tenants_with_mappings(session: Session, tenant_ids: Collection[str]) -> set[str]:
    if not tenant_ids:
        return set()
    rows = session.execute(select(RoleMapping.tenant_id).distinct()
                           .where(RoleMapping.tenant_id.in_(list(tenant_ids))))
    return set(rows.scalars())


def roles_of(session: Session, users: Collection[Key]) -> dict[Key, tuple[str, ...]]:
    """Each user's roles (both origins), sorted; a user without any is absent."""
    if not users:
        return {}
    rows = session.execute(
        select(UserRole.tenant_id, UserRole.user_id, UserRole.role).distinct()
        .where(pairs_in(session, UserRole.tenant_id, UserRole.user_id, users))
    )
    found: dict[Key, set[str]] = defaultdict(set)
    for tenant_id, user_id, role in rows:
        found[(tenant_id, user_id)].add(role)
    return {key: tuple(sorted(roles)) for key, roles in found.items()}


def refresh_from_groups(
    session: Session, users: Collection[Key], *, unmapped_too: bool = False
) -> list[RoleChange]:
    """Recompute these users' group roles from their applied memberships; return the users
    whose roles changed. Users of tenants without mappings cost nothing but one probe, unless
    `unmapped_too` (a tenant's last mapping was just removed: its roles must go)."""
    if unmapped_too:
        wanted = sorted(users)
    else:
        mapped = tenants_with_mappings(session, {tenant_id for tenant_id, _ in users})
        wanted = sorted(key for key in users if key[0] in mapped)
    if not wanted:
        return []
    before = roles_of(session, wanted)
    desired = _group_roles(session, wanted)
    _replace(session, wanted, FROM_GROUPS, desired)
    return _changes(before, roles_of(session, wanted), wanted)


def set_claim_roles(
    session: Session, tenant_id: str, user_id: str, claims: Iterable[str]
) -> RoleChange | None:
    """Give a user the roles of its login's group claims (replacing earlier ones)."""
    key = (tenant_id, user_id)
    before = roles_of(session, [key])
    _replace(session, [key], FROM_CLAIMS, {key: claim_roles(session, tenant_id, claims)})
    changes = _changes(before, roles_of(session, [key]), [key])
    return changes[0] if changes else None


def drop_claim_roles(session: Session, tenant_id: str, user_id: str) -> RoleChange | None:
    """A user SCIM now owns keeps only the roles of its groups."""
    return set_claim_roles(session, tenant_id, user_id, ())


def claim_roles(session: Session, tenant_id: str, claims: Iterable[str]) -> set[str]:
    """The roles these group claims (group ids, externalIds or names) map to."""
    refs = {claim for claim in claims if claim}
    if not refs:
        return set()
    rows = session.execute(select(RoleMapping.role).where(
        RoleMapping.tenant_id == tenant_id,
        or_(RoleMapping.group_ref.in_(refs),
            RoleMapping.group_ref_key.in_({fold_key(ref) for ref in refs})),
    ))
    return set(rows.scalars())


def members_of_mapped_groups(session: Session, tenant_id: str, group_ref: str) -> list[Key]:
    """The users in the groups a mapping of `group_ref` names."""
    rows = session.execute(
        select(Membership.member_id).distinct()
        .join(Group, and_(Group.tenant_id == Membership.tenant_id,
                          Group.id == Membership.group_id))
        .where(Membership.tenant_id == tenant_id, Membership.member_type == "User",
               or_(Group.id == group_ref, Group.external_id == group_ref,
                   Group.display_name_key == fold_key(group_ref)))
    )
    return [(tenant_id, user_id) for user_id in rows.scalars()]


def members_of_groups(session: Session, groups: Collection[Key]) -> list[Key]:
    """The users in these groups, as applied."""
    if not groups:
        return []
    rows = session.execute(
        select(Membership.tenant_id, Membership.member_id).distinct()
        .where(pairs_in(session, Membership.tenant_id, Membership.group_id, groups),
               Membership.member_type == "User")
    )
    return [(tenant_id, user_id) for tenant_id, user_id in rows]


def forget(session: Session, users: Collection[Key]) -> None:
    """Deleted users hold no roles."""
    if users:
        session.execute(delete(UserRole).where(
            pairs_in(session, UserRole.tenant_id, UserRole.user_id, users)))


def _group_roles(session: Session, users: Collection[Key]) -> dict[Key, set[str]]:
    mapping = RoleMapping
    rows = session.execute(
        select(Membership.tenant_id, Membership.member_id, mapping.role).distinct()
        .join(Group, and_(Group.tenant_id == Membership.tenant_id,
                          Group.id == Membership.group_id))
        .join(mapping, and_(
            mapping.tenant_id == Group.tenant_id,
            or_(mapping.group_ref == Group.id, mapping.group_ref == Group.external_id,
                mapping.group_ref_key == Group.display_name_key),
        ))
        .where(pairs_in(session, Membership.tenant_id, Membership.member_id, users))
    )
    found: dict[Key, set[str]] = defaultdict(set)
    for tenant_id, user_id, role in rows:
        found[(tenant_id, user_id)].add(role)
    return found


def _replace(
    session: Session, users: Collection[Key], origin: str, roles: dict[Key, set[str]]
) -> None:
    session.execute(delete(UserRole).where(
        UserRole.origin == origin, pairs_in(session, UserRole.tenant_id, UserRole.user_id, users)))
    rows = [{"tenant_id": t, "user_id": u, "role": role, "origin": origin}
            for (t, u), held in roles.items() for role in sorted(held)]
    if rows:
        session.execute(insert(UserRole), rows)


def _changes(
    before: dict[Key, tuple[str, ...]], after: dict[Key, tuple[str, ...]], users: Iterable[Key]
) -> list[RoleChange]:
    return [
        RoleChange(key[0], key[1], before.get(key, ()), after.get(key, ()))
        for key in users if before.get(key, ()) != after.get(key, ())
    ]
