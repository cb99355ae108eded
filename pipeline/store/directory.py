"""The applied directory (`users`, `groups`, `memberships`): batched, set-based reads and writes.

Workers call these with the rows of a whole batch at once: one statement per table and kind of
change, however many resources the batch holds. Nothing here loads a group's members unless
asked to by name (`members_of`), and nothing commits: the caller owns the transaction.
See docs/ARCHITECTURE.md ("Two views of the directory").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    delete,
    select,
    tuple_,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.bulk import insert_recordset, pairs_in
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.models import Group, Membership, User

Key = tuple[str, str]  # (tenant_id, resource_id)


@dataclass(frozen=True, slots=True)
class Applied:
    data: dict[str, Any]
    version: int


@dataclass(frozen=True, slots=True)
class MemberRow:
    tenant_id: str
    group_id: str
    member_id: str
    member_type: str
    display: str | None


@dataclass(frozen=True, slots=True)
class AppliedTable:
    """Where one resource type's applied state lives: its table and the columns of its own."""

    resource_type: str
    model: type[User] | type[Group]
    # The columns besides the common ones (tenant, id, externalId, data, version, times),
    # taken from an applied state.
    columns: tuple[str, ...]
    columns_of: Callable[[Mapping[str, Any]], dict[str, Any]]
    holds_members: bool


def _user_columns(state: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "user_name": state["userName"],
        "user_name_key": fold_key(state["userName"]),
        "display_name": state.get("displayName"),
        "active": state.get("active", True) is not False,
    }


def _group_columns(state: Mapping[str, Any]) -> dict[str, Any]:
    name = state["displayName"]
    return {"display_name": name, "display_name_key": fold_key(name)}


USERS = AppliedTable(
    "User", User, ("user_name", "user_name_key", "display_name", "active"), _user_columns,
    holds_members=False,
)
GROUPS = AppliedTable(
    "Group", Group, ("display_name", "display_name_key"), _group_columns, holds_members=True
)
# In the order a batch applies them: users first, so that a group may reference a user
# created in the same batch.
APPLIED_TABLES = (USERS, GROUPS)


def load(session: Session, table: AppliedTable, keys: Collection[Key]) -> dict[Key, Applied]:
    """The applied state of these resources (absent keys do not exist yet)."""
    if not keys:
        return {}
    model = table.model
    rows = session.execute(
        select(model.tenant_id, model.id, model.data, model.version)
        .where(_key_in(session, model, keys))
    )
    return {(row.tenant_id, row.id): Applied(row.data, row.version) for row in rows}


def existing_types(session: Session, tenant_id: str, ids: Collection[str]) -> dict[str, str]:
    """Which of these ids are applied users or groups of the tenant, and which of the two."""
    found: dict[str, str] = {}
    if not ids:
        return found
    for table in APPLIED_TABLES:
        model = table.model
        rows = session.execute(
            select(model.id).where(model.tenant_id == tenant_id, model.id.in_(list(ids)))
        )
        found.update((row.id, table.resource_type) for row in rows)
    return found


def upsert(session: Session, table: AppliedTable, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update applied resources of one type (rows of every column)."""
    if not rows:
        return
    columns = (*table.columns, "external_id")
    updated = (*columns, "data", "version", "journal_seq", "updated_at")
    if is_postgres(session):
        names = ("tenant_id", "id", *columns, "data", "version", "journal_seq", "created_at",
                 "updated_at")
        assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in updated)
        insert_recordset(session, _table(table.model), names, rows,
                         conflict=f"ON CONFLICT (tenant_id, id) DO UPDATE SET {assignments}")
        return
    statement = sqlite.insert(table.model)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "id"],
            set_={name: statement.excluded[name] for name in updated},
        ),
        list(rows),
    )


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


# A membership as the statements that change memberships report it:
# (tenant, group, member, member type).
MemberChange = tuple[str, str, str, str]
_CHANGE_COLUMNS = ("tenant_id", "group_id", "member_id", "member_type")


def delete_resources(
    session: Session, table: AppliedTable, keys: Collection[Key]
) -> list[MemberChange]:
    """Delete users or groups, and every membership naming them; return the memberships that
    other groups lost (a deleted group's own members go with it, unreported)."""
    if not keys:
        return []
    session.execute(delete(table.model).where(_key_in(session, table.model, keys)))
    lost = _deleted_members(session, tuple_(Membership.tenant_id, Membership.member_id), keys)
    if table.holds_members:
        clear_members(session, keys)
    return lost


def clear_members(session: Session, groups: Collection[Key]) -> list[MemberChange]:
    """Remove every member of these groups; return the memberships removed."""
    return _deleted_members(session, tuple_(Membership.tenant_id, Membership.group_id), groups)


def remove_members(
    session: Session, triples: Collection[tuple[str, str, str]]
) -> list[MemberChange]:
    """Remove (tenant, group, member) memberships in one statement; return those removed."""
    columns = tuple_(Membership.tenant_id, Membership.group_id, Membership.member_id)
    return _deleted_members(session, columns, triples)


def _deleted_members(
    session: Session, columns: Any, values: Collection[tuple[str, ...]]
) -> list[MemberChange]:
    if not values:
        return []
    rows = session.execute(
        delete(Membership).where(columns.in_(list(values)))
        .returning(*(getattr(Membership, name) for name in _CHANGE_COLUMNS))
    )
    return [cast(MemberChange, tuple(row)) for row in rows]


def add_members(session: Session, rows: Sequence[MemberRow]) -> list[MemberChange]:
    """Insert memberships; one already there is left as it is (idempotent). Return those
    really inserted."""
    if not rows:
        return []
    values = [
        {
            "tenant_id": r.tenant_id,
            "group_id": r.group_id,
            "member_id": r.member_id,
            "member_type": r.member_type,
            "display": r.display,
        }
        for r in rows
    ]
    if is_postgres(session):
        # A group may list a member twice in one batch; DO NOTHING keeps the first.
        inserted = insert_recordset(session, _table(Membership), tuple(values[0]), values,
                                    conflict="ON CONFLICT DO NOTHING", returning=_CHANGE_COLUMNS)
        return [cast(MemberChange, row) for row in inserted]
    statement = (
        sqlite.insert(Membership).on_conflict_do_nothing()
        .returning(*(getattr(Membership, name) for name in _CHANGE_COLUMNS))
    )
    return [cast(MemberChange, tuple(row)) for row in session.execute(statement, values)]


def members_of(session: Session, tenant_id: str, group_id: str) -> list[dict[str, Any]]:
    """All members of one group, as canonical `members` values."""
    rows = session.execute(
        select(Membership.member_id, Membership.member_type, Membership.display)
        .where(Membership.tenant_id == tenant_id, Membership.group_id == group_id)
        .order_by(Membership.member_id)
    )
    return [_member_value(row.member_id, row.member_type, row.display) for row in rows]


def members_by_group(
    session: Session, tenant_id: str, group_ids: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """Members of several groups in one query (list pages render members without N+1)."""
    out: dict[str, list[dict[str, Any]]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return out
    rows = session.execute(
        select(
            Membership.group_id, Membership.member_id, Membership.member_type, Membership.display
        )
        .where(Membership.tenant_id == tenant_id, Membership.group_id.in_(list(group_ids)))
        .order_by(Membership.group_id, Membership.member_id)
    )
    for row in rows:
        out[row.group_id].append(_member_value(row.member_id, row.member_type, row.display))
    return out


def groups_of_users(
    session: Session, tenant_id: str, user_ids: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """The read-only `groups` attribute of users (direct memberships), in one query."""
    out: dict[str, list[dict[str, Any]]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return out
    rows = session.execute(
        select(Membership.member_id, Group.id, Group.display_name)
        .join(Group, and_(Group.tenant_id == Membership.tenant_id, Group.id == Membership.group_id))
        .where(Membership.tenant_id == tenant_id, Membership.member_id.in_(list(user_ids)))
        .order_by(Group.display_name)
    )
    for row in rows:
        out[row.member_id].append({"value": row.id, "display": row.display_name, "type": "direct"})
    return out


def group_identities(
    session: Session, keys: Collection[Key]
) -> dict[Key, tuple[int, dict[str, Any]]]:
    """The applied version and identity (externalId, displayName) of these groups, each row
    locked until the commit: a concurrent change of the group then commits (and takes its
    event position) wholly before or after this one, so versions follow positions."""
    if not keys:
        return {}
    rows = session.execute(
        select(Group.tenant_id, Group.id, Group.version, Group.external_id, Group.display_name)
        .where(_key_in(session, Group, keys))
        .order_by(Group.tenant_id, Group.id)  # one locking order for every transaction
        .with_for_update()
    )
    return {
        (row.tenant_id, row.id): (
            row.version, {"externalId": row.external_id, "displayName": row.display_name}
        )
        for row in rows
    }


def user_identities(
    session: Session, keys: Collection[Key]
) -> dict[Key, tuple[int, dict[str, Any]]]:
    """The applied version and identity (externalId, userName) of these users."""
    if not keys:
        return {}
    rows = session.execute(
        select(User.tenant_id, User.id, User.version, User.external_id, User.user_name)
        .where(_key_in(session, User, keys))
    )
    return {
        (row.tenant_id, row.id): (
            row.version, {"externalId": row.external_id, "userName": row.user_name}
        )
        for row in rows
    }


def _key_in(session: Session, table: type[User] | type[Group], keys: Collection[Key]) -> Any:
    return pairs_in(session, table.tenant_id, table.id, keys)


def _member_value(member_id: str, member_type: str, display: str | None) -> dict[str, Any]:
    value: dict[str, Any] = {"value": member_id, "type": member_type}
    if display:
        value["display"] = display
    return value
