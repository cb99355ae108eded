"""The operator view of a tenant's directory: a bounded page of resources (searched by
userName, externalId, email or displayName, or the newest), and the state of the resources on
it (pending, waiting, dead-lettered, last applied; memberships), one query per kind of detail,
never one per row. See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.journal import APPLIED
from scimflow.pipeline.store.models import (
    AcknowledgedRow,
    DeadLetter,
    Group,
    JournalEntry,
    JournalWait,
    Membership,
)
from scimflow.pipeline.store.overview import IS_PENDING, unsettled

MEMBERSHIPS_SHOWN = 20


# --- Directory -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceRow:
    id: str
    resource_type: str
    data: dict[str, Any]
    source: str
    created_at: datetime
    updated_at: datetime


_RESOURCE_COLUMNS = (AcknowledgedRow.id, AcknowledgedRow.resource_type, AcknowledgedRow.data,
                     AcknowledgedRow.source, AcknowledgedRow.created_at,
                     AcknowledgedRow.updated_at)


def search_resources(
    session: Session, tenant_id: str, query: str, resource_type: str | None, *, limit: int
) -> tuple[list[ResourceRow], bool]:
    """With a query: the resources whose userName, displayName or externalId starts with it
    (case-insensitive), or an email when it holds an `@`, by name. Without one: the newest
    first, read backwards along `ix_resources_listing`, type by type. And whether more than
    `limit` matched."""
    if not query:
        return _newest(session, tenant_id, resource_type, limit=limit)
    name_key = func.coalesce(AcknowledgedRow.user_name_key, AcknowledgedRow.display_name_key)
    statement = select(*_RESOURCE_COLUMNS).where(AcknowledgedRow.tenant_id == tenant_id,
                                                 _matches(session, query))
    if resource_type is not None:
        statement = statement.where(AcknowledgedRow.resource_type == resource_type)
    rows = session.execute(
        statement.order_by(AcknowledgedRow.resource_type.desc(), name_key, AcknowledgedRow.id)
        .limit(limit + 1)
    ).all()
    return [ResourceRow(*row) for row in rows[:limit]], len(rows) > limit


def _newest(session: Session, tenant_id: str, resource_type: str | None, *, limit: int
            ) -> tuple[list[ResourceRow], bool]:
    found: list[ResourceRow] = []
    for type_name in (resource_type,) if resource_type else ("User", "Group"):
        rows = session.execute(
            select(*_RESOURCE_COLUMNS)
            .where(AcknowledgedRow.tenant_id == tenant_id,
                   AcknowledgedRow.resource_type == type_name)
            .order_by(AcknowledgedRow.created_at.desc(), AcknowledgedRow.id.desc())
            .limit(limit + 1)
        )
        found.extend(ResourceRow(*row) for row in rows)
    found.sort(key=lambda row: (row.created_at, row.id), reverse=True)
    return found[:limit], len(found) > limit


def _matches(session: Session, query: str) -> ColumnElement[bool]:
    folded, lowered = _prefix(fold_key(query)), _prefix(query.lower())
    keys: list[ColumnElement[bool] | TextClause] = [
        AcknowledgedRow.user_name_key.like(folded, escape="\\"),
        AcknowledgedRow.display_name_key.like(folded, escape="\\"),
        func.lower(AcknowledgedRow.external_id).like(lowered, escape="\\"),
    ]
    if "@" in query:
        # Emails live only in `data`: reading them costs a JSON parse per resource, so only
        # a query that can be an email's start reads them.
        email = _EMAIL_PREFIX_PG if is_postgres(session) else _EMAIL_PREFIX_SQLITE
        keys.append(text(email).bindparams(email_prefix=lowered))
    return or_(*keys)


def _prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# Canonical resources hold `emails` as a list of objects (pipeline/scim/): any of their values.
_EMAIL_PREFIX_PG = (
    "EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(resources.data -> 'emails')"
    " = 'array' THEN resources.data -> 'emails' ELSE '[]'::json END) AS email"
    " WHERE lower(email ->> 'value') LIKE :email_prefix ESCAPE '\\')"
)
_EMAIL_PREFIX_SQLITE = (
    "EXISTS (SELECT 1 FROM json_each(resources.data, '$.emails') AS email"
    " WHERE lower(json_extract(email.value, '$.value')) LIKE :email_prefix ESCAPE '\\')"
)


def find_resource(session: Session, tenant_id: str, reference: str) -> ResourceRow | None:
    """By id, then userName, displayName or externalId (one probe each, on their indexes)."""
    key = fold_key(reference)
    for condition in (AcknowledgedRow.id == reference, AcknowledgedRow.user_name_key == key,
                      AcknowledgedRow.display_name_key == key,
                      AcknowledgedRow.external_id == reference):
        row = session.execute(
            select(*_RESOURCE_COLUMNS)
            .where(AcknowledgedRow.tenant_id == tenant_id, condition).limit(1)
        ).first()
        if row is not None:
            return ResourceRow(*row)
    return None


@dataclass(frozen=True, slots=True)
class JournalState:
    """What the journal says of one resource now."""

    pending: bool = False
    waiting: bool = False
    dead_lettered: bool = False
    last_applied_at: datetime | None = None


def journal_states(
    session: Session, tenant_id: str, resource_ids: Collection[str]
) -> dict[str, JournalState]:
    """The state of each resource: three queries for the whole page."""
    ids = list(resource_ids)
    if not ids:
        return {}
    of_resources = (JournalEntry.tenant_id == tenant_id, JournalEntry.resource_id.in_(ids))
    pending_seqs: dict[int, str] = dict(session.execute(
        select(JournalEntry.seq, JournalEntry.resource_id)
        .where(*of_resources, IS_PENDING)
    ).all())
    waiting = {pending_seqs[seq] for seq in session.scalars(
        select(JournalWait.seq).where(JournalWait.seq.in_(list(pending_seqs)))
    )} if pending_seqs else set()
    applied: dict[str, datetime | None] = dict(session.execute(
        select(JournalEntry.resource_id, func.max(JournalEntry.applied_at))
        .where(*of_resources, JournalEntry.status == APPLIED).group_by(JournalEntry.resource_id)
    ).all())
    dead = set(session.scalars(
        select(DeadLetter.resource_id)
        .where(DeadLetter.tenant_id == tenant_id, DeadLetter.resource_id.in_(ids), unsettled())
    ))
    pending = set(pending_seqs.values())
    return {
        resource_id: JournalState(resource_id in pending, resource_id in waiting,
                                  resource_id in dead, applied.get(resource_id))
        for resource_id in ids
    }


def groups_of(session: Session, tenant_id: str, user_ids: Collection[str]) -> dict[str, list[str]]:
    """Each user's groups by displayName (at most MEMBERSHIPS_SHOWN each)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Membership.member_id, Group.display_name)
        .join(Group, and_(Group.tenant_id == Membership.tenant_id,
                          Group.id == Membership.group_id))
        .where(Membership.tenant_id == tenant_id, Membership.member_id.in_(list(user_ids)))
        .order_by(Membership.member_id, Group.display_name_key)
    )
    found: dict[str, list[str]] = {}
    for member_id, display_name in rows:
        names = found.setdefault(member_id, [])
        if len(names) < MEMBERSHIPS_SHOWN:
            names.append(display_name)
    return found


def member_counts(session: Session, tenant_id: str, group_ids: Collection[str]) -> dict[str, int]:
    if not group_ids:
        return {}
    rows = session.execute(
        select(Membership.group_id, func.count())
        .where(Membership.tenant_id == tenant_id, Membership.group_id.in_(list(group_ids)))
        .group_by(Membership.group_id)
    )
    return {group_id: int(count) for group_id, count in rows}
