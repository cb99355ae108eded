"""The applied directory (`users`, `groups`, `memberships`): batched, set-based reads and writes.

Workers call these with the rows of a whole batch at once: one statement per table and kind of
change, however many resources the batch holds. Nothing here loads a group's members unless
asked to by name (`members_of`), and nothing commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    delete,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from scimflow.pipeline.store.bulk import insert_recordset, pairs_in
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.models import Group, Membership, OutboxEvent, User, UserSession

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


def load(session: Session, resource_type: str, keys: Collection[Key]) -> dict[Key, Applied]:
    """The applied state of these resources (absent keys do not exist yet)."""
    if not keys:
        return {}
    table = User if resource_type == "User" else Group
    rows = session.execute(
        select(table.tenant_id, table.id, table.data, table.version)
        .where(_key_in(session, table, keys))
    )
    return {(row.tenant_id, row.id): Applied(row.data, row.version) for row in rows}


def existing_types(session: Session, tenant_id: str, ids: Collection[str]) -> dict[str, str]:
    """Which of these ids are applied users or groups of the tenant, and which of the two."""
    found: dict[str, str] = {}
    if not ids:
        return found
    for table, type_name in ((User, "User"), (Group, "Group")):
        rows = session.execute(
            select(table.id).where(table.tenant_id == tenant_id, table.id.in_(list(ids)))
        )
        found.update((row.id, type_name) for row in rows)
    return found


def upsert_users(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    columns = ("user_name", "user_name_key", "external_id", "display_name", "active")
    _upsert(session, User, rows, columns)


def upsert_groups(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    _upsert(session, Group, rows, ("display_name", "display_name_key", "external_id"))


def _upsert(
    session: Session,
    table: type[User] | type[Group],
    rows: Sequence[dict[str, Any]],
    columns: tuple[str, ...],
) -> None:
    if not rows:
        return
    updated = (*columns, "data", "version", "journal_seq", "updated_at")
    if is_postgres(session):
        names = ("tenant_id", "id", *columns, "data", "version", "journal_seq", "created_at",
                 "updated_at")
        assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in updated)
        insert_recordset(session, _table(table), names, rows,
                       f"ON CONFLICT (tenant_id, id) DO UPDATE SET {assignments}")
        return
    statement = sqlite.insert(table)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "id"],
            set_={name: statement.excluded[name] for name in updated},
        ),
        list(rows),
    )


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def delete_resources(session: Session, resource_type: str, keys: Collection[Key]) -> None:
    """Delete users or groups, and every membership that names them as a member."""
    if not keys:
        return
    table = User if resource_type == "User" else Group
    session.execute(delete(table).where(_key_in(session, table, keys)))
    session.execute(
        delete(Membership).where(tuple_(Membership.tenant_id, Membership.member_id).in_(list(keys)))
    )
    if resource_type == "Group":
        clear_members(session, keys)


def clear_members(session: Session, groups: Collection[Key]) -> None:
    if groups:
        session.execute(
            delete(Membership).where(
                tuple_(Membership.tenant_id, Membership.group_id).in_(list(groups))
            )
        )


def remove_members(session: Session, pairs: Collection[tuple[str, str, str]]) -> None:
    """Remove (tenant, group, member) memberships in one statement."""
    if pairs:
        session.execute(
            delete(Membership).where(
                tuple_(Membership.tenant_id, Membership.group_id, Membership.member_id).in_(
                    list(pairs)
                )
            )
        )


def add_members(session: Session, rows: Sequence[MemberRow]) -> None:
    """Insert memberships; one already there is left as it is (idempotent)."""
    if not rows:
        return
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
        insert_recordset(session, _table(Membership), tuple(values[0]), values,
                       "ON CONFLICT DO NOTHING")
        return
    session.execute(sqlite.insert(Membership).on_conflict_do_nothing(), values)


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


def revoke_sessions(session: Session, users: Collection[Key], *, now: datetime) -> int:
    """Revoke every live session of these users; return how many were revoked."""
    if not users:
        return 0
    result = session.execute(
        update(UserSession)
        .where(
            tuple_(UserSession.tenant_id, UserSession.user_id).in_(list(users)),
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


EVENT_COLUMNS = ("tenant_id", "event_type", "resource_type", "resource_id", "journal_seq",
                 "payload", "created_at")


def add_events(session: Session, events: Iterable[dict[str, Any]]) -> None:
    rows = list(events)
    if not rows:
        return
    if is_postgres(session):
        insert_recordset(session, _table(OutboxEvent), EVENT_COLUMNS, rows)
    else:
        session.execute(insert(OutboxEvent), rows)


def _key_in(session: Session, table: type[User] | type[Group], keys: Collection[Key]) -> Any:
    return pairs_in(session, table.tenant_id, table.id, keys)


def _member_value(member_id: str, member_type: str, display: str | None) -> dict[str, Any]:
    value: dict[str, Any] = {"value": member_id, "type": member_type}
    if display:
        value["display"] = display
    return value
