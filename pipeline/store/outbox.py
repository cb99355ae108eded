"""The outbox: events appended by the applying transaction, read in position order by webhook
delivery, the events API and the SET poll feed.

Positions follow commit order. The applying transaction takes its positions last, from the
one `event_positions` row, whose row lock it then holds until it commits: a transaction that
commits later takes higher positions, so a reader that has seen position N never later finds a
new event below N (plain identity values would be handed out at insert and could commit out
of order, and a cursor would skip the late ones). See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.store.bulk import insert_recordset
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.event_tables import COUNTER, EventPosition, OutboxEvent

COLUMNS = ("id", "event_id", "tenant_id", "event_type", "resource_type", "resource_id",
           "journal_seq", "payload", "created_at")

def append(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Give the rows their positions, in order, and insert them. Call it last before the
    commit: the counter's row stays locked until then."""
    if not rows:
        return
    last = session.scalar(
        update(EventPosition).where(EventPosition.name == COUNTER)
        .values(last=EventPosition.last + len(rows)).returning(EventPosition.last)
    )
    if last is None:
        raise RuntimeError("the event_positions counter is missing: run `scimflow migrate`")
    first = last - len(rows) + 1
    positioned = [{**row, "id": first + index} for index, row in enumerate(rows)]
    if is_postgres(session):
        insert_recordset(session, cast(Table, OutboxEvent.__table__), COLUMNS, positioned)
    else:
        session.execute(insert(OutboxEvent), positioned)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    tenant_id: str
    event_type: str
    resource_id: str
    document: dict[str, Any]


def read_after(
    session: Session,
    after: int,
    *,
    limit: int,
    tenants: Collection[str] | None = None,
    types: Collection[str] | None = None,
) -> list[StoredEvent]:
    """Events past position `after`, in position order; `tenants` / `types` narrow them."""
    query = select(OutboxEvent.id, OutboxEvent.tenant_id, OutboxEvent.event_type,
                   OutboxEvent.resource_id, OutboxEvent.payload).where(OutboxEvent.id > after)
    if tenants is not None:
        query = query.where(OutboxEvent.tenant_id.in_(list(tenants)))
    if types is not None:
        query = query.where(OutboxEvent.event_type.in_(list(types)))
    rows = session.execute(query.order_by(OutboxEvent.id).limit(limit))
    return [StoredEvent(*row) for row in rows]


def last_position(session: Session) -> int:
    """The highest position handed out so far (0: none)."""
    return int(session.scalar(select(EventPosition.last).where(EventPosition.name == COUNTER))
               or 0)


def position_of(session: Session, event_id: str) -> int | None:
    return session.scalar(select(OutboxEvent.id).where(OutboxEvent.event_id == event_id))


def position_before(session: Session, moment: datetime) -> int:
    """The cursor that sends every event written at or after `moment` again: just before the
    first of them. (Not the last event written before it: `created_at` is stamped before the
    commit, so an event written later can hold a lower position than one written earlier.)"""
    first = session.scalar(
        select(func.min(OutboxEvent.id)).where(OutboxEvent.created_at >= moment)
    )
    return int(first) - 1 if first is not None else last_position(session)
