"""What a drained batch writes: its outcomes as set-based statements, one per table and kind.

Upserts, then memberships, then deletions: a member added earlier in the batch to a user
deleted later in it must be gone at the end, and memberships need their group. Each resource
type's table and columns come from `store/directory.py`'s `APPLIED_TABLES`, so nothing here
switches on User and Group. See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from scimflow.pipeline.apply import Outcome
from scimflow.pipeline.events.model import Subject
from scimflow.pipeline.services.change_events import (
    PendingEvent,
    member_events,
    role_events,
    session_events,
)
from scimflow.pipeline.store import directory, roles, user_sessions
from scimflow.pipeline.store.directory import (
    APPLIED_TABLES,
    AppliedTable,
    Key,
    MemberChange,
    MemberRow,
)
from scimflow.pipeline.store.roles import RoleChange
from scimflow.pipeline.store.user_sessions import DELETED, DEPROVISIONED, RevokedSession

# A change of these attributes can change which role mappings name a group.
RENAMING = frozenset({"displayName", "externalId"})

# How a referenced member that was deleted since is known (see `Drainer._learn_references`).
GONE = "gone"

# The member ids known to exist when a batch applies, per tenant: id -> resource type or GONE.
Known = Mapping[str, Mapping[str, str]]


def write_outcomes(
    session: Session, outcomes: Mapping[Key, Outcome], known: Known, now: datetime
) -> list[PendingEvent]:
    """The applied directory's writes of these outcomes (not the journal's); return the
    events they make, for the outbox (written last, see `store/outbox.py`)."""
    for table in APPLIED_TABLES:
        directory.upsert(session, table, _rows(table, outcomes, now))
    added, removed = _write_members(session, outcomes, known)
    # The members of groups about to be deleted lose those groups' roles (their memberships
    # go with the group, unreported: `group.deleted` says it all).
    losing = roles.members_of_groups(session, _deleted_groups(outcomes))
    for table in APPLIED_TABLES:
        removed.extend(directory.delete_resources(session, table, _deleted(table, outcomes)))
    revoked = _revoke_sessions(session, outcomes, now)
    role_changes = _refresh_roles(session, outcomes, [*added, *removed], losing)
    return [
        *_entry_events(outcomes),
        *member_events(session, outcomes, added, removed),
        *session_events(outcomes, revoked, now),
        *role_events(session, outcomes, role_changes),
    ]


def _refresh_roles(
    session: Session, outcomes: Mapping[Key, Outcome], member_changes: list[MemberChange],
    of_deleted_groups: list[Key],
) -> list[RoleChange]:
    """Recompute the roles of the users whose memberships changed, of the members of the
    groups renamed (a mapping may name a group by its displayName or externalId) and of the
    members of the groups deleted."""
    users = {(t, member_id) for t, _, member_id, member_type in member_changes
             if member_type == "User"}
    users.update(roles.members_of_groups(session, _renamed_groups(outcomes)))
    users.update(of_deleted_groups)
    deleted = [key for key, o in outcomes.items()
               if o.resource_type == "User" and o.state is None]
    roles.forget(session, deleted)
    return roles.refresh_from_groups(session, users - set(deleted))


def _deleted_groups(outcomes: Mapping[Key, Outcome]) -> list[Key]:
    return [key for key, o in outcomes.items()
            if o.resource_type == "Group" and o.existed and o.state is None]


def _renamed_groups(outcomes: Mapping[Key, Outcome]) -> list[Key]:
    return [
        key for key, o in outcomes.items()
        if o.resource_type == "Group" and any(
            RENAMING & set(event.changed_attributes) for event in o.events
        )
    ]


def _revoke_sessions(
    session: Session, outcomes: Mapping[Key, Outcome], now: datetime
) -> list[RevokedSession]:
    """End the live sessions of the users the batch deprovisioned, each with its reason."""
    deleted = [key for key, o in outcomes.items() if o.deprovisioned and o.state is None]
    deactivated = [key for key, o in outcomes.items() if o.deprovisioned and o.state is not None]
    return [
        *user_sessions.revoke(session, deleted, reason=DELETED, now=now),
        *user_sessions.revoke(session, deactivated, reason=DEPROVISIONED, now=now),
    ]


def _rows(
    table: AppliedTable, outcomes: Mapping[Key, Outcome], now: datetime
) -> list[dict[str, Any]]:
    return [
        _row(table, key, o, o.state, now)
        for key, o in outcomes.items()
        if o.resource_type == table.resource_type and o.changed and o.state is not None
    ]


def _row(
    table: AppliedTable, key: Key, outcome: Outcome, state: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": key[0],
        "id": key[1],
        "external_id": state.get("externalId"),
        "data": state,
        "version": outcome.version,
        "journal_seq": outcome.applied[-1],
        "created_at": now,
        "updated_at": now,
        **table.columns_of(state),
    }


def _deleted(table: AppliedTable, outcomes: Mapping[Key, Outcome]) -> list[Key]:
    return [
        key for key, o in outcomes.items()
        if o.resource_type == table.resource_type and o.changed and o.existed and o.state is None
    ]


def _write_members(
    session: Session, outcomes: Mapping[Key, Outcome], known: Known
) -> tuple[list[MemberChange], list[MemberChange]]:
    """Write the batch's membership plans; return the memberships added and removed."""
    reset: list[Key] = []
    removes: list[tuple[str, str, str]] = []
    adds: list[MemberRow] = []
    for key, outcome in outcomes.items():
        plan = outcome.members
        if plan is None or not plan.changed or outcome.state is None:
            continue
        if plan.reset:
            reset.append(key)
        removes.extend((key[0], key[1], member_id) for member_id in plan.removes)
        types = known.get(key[0], {})
        adds.extend(
            MemberRow(
                key[0],
                key[1],
                value["value"],
                value.get("type") or types.get(value["value"], "User"),
                value.get("display"),
            )
            for value in plan.adds.values()
            if types.get(value["value"]) != GONE
        )
    removed = directory.clear_members(session, reset)
    removed.extend(directory.remove_members(session, removes))
    return directory.add_members(session, adds), removed


def _entry_events(outcomes: Mapping[Key, Outcome]) -> Iterator[PendingEvent]:
    for (tenant_id, resource_id), outcome in outcomes.items():
        subject = Subject(tenant_id, outcome.resource_type, resource_id)
        for draft in outcome.events:
            yield PendingEvent(draft, subject)
