"""The journal of accepted commands: append (API side), claim and settle (worker side).
See docs/ARCHITECTURE.md ("Two views of the directory").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from scimflow.pipeline.commands import Command, Entry
from scimflow.pipeline.store.bulk import is_in, pairs_in
from scimflow.pipeline.store.models import JournalEntry as Row
from scimflow.pipeline.store.models import JournalWait as Wait

PENDING, APPLIED, DEAD = "pending", "applied", "dead"
DEPROVISION_LANE, NORMAL_LANE = 0, 1


TABLE: Table = cast(Table, Row.__table__)


def entry_values(
    tenant_id: str, command: Command, *, now: datetime, request_id: str
) -> dict[str, Any]:
    """The journal row of an accepted command (without `seq`, which the database assigns)."""
    return {
        "tenant_id": tenant_id,
        "resource_id": command.resource_id,
        "resource_type": command.resource_type,
        "kind": command.kind.value,
        "command": command.to_json(),
        "status": PENDING,
        "lane": DEPROVISION_LANE if command.deprovisions else NORMAL_LANE,
        "attempts": 0,
        "request_id": request_id,
        "created_at": now,
    }


def append(
    session: Session, tenant_id: str, command: Command, *, now: datetime, request_id: str
) -> int:
    """Append one accepted command; its `seq` orders it after every earlier command."""
    values = entry_values(tenant_id, command, now=now, request_id=request_id)
    # The Core table, not the ORM class: this runs on every write, and the ORM layer adds
    # nothing to a single INSERT but CPU.
    seq: int = session.execute(
        insert(TABLE).values(values).returning(TABLE.c.seq)
    ).scalar_one()
    return seq


@dataclass(frozen=True, slots=True)
class Pending:
    """The pending entries of claimed resources, split by whether their resource is due."""

    due: list[Entry]  # every pending entry of the resources whose oldest entry is due
    postponed_heads: list[Entry]  # the oldest entry of each other resource


def pending_entries(
    session: Session, resources: Sequence[tuple[str, str]], *, now: datetime
) -> Pending:
    """All pending entries of the given (locked) resources, in `seq` order.

    A resource whose oldest pending entry is postponed is left out entirely: its later
    entries wait behind it, whatever their own due time.
    """
    if not resources:
        return Pending([], [])
    rows = session.execute(
        select(Row.seq, Row.tenant_id, Row.resource_id, Row.command, Row.attempts,
               Row.created_at, Row.not_before, Row.request_id)
        .where(Row.status == PENDING,
               pairs_in(session, Row.tenant_id, Row.resource_id, resources))
        .order_by(Row.seq)
    )
    entries = [
        Entry(row.seq, row.tenant_id, row.resource_id, Command.from_json(row.command),
              row.attempts, row.created_at, row.not_before, row.request_id)
        for row in rows
    ]
    heads: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        heads.setdefault((entry.tenant_id, entry.resource_id), entry)
    waiting = {key: head for key, head in heads.items() if not head.due(now)}
    due = [e for e in entries if (e.tenant_id, e.resource_id) not in waiting]
    return Pending(due, list(waiting.values()))


def hold_behind(session: Session, heads: Iterable[Entry]) -> None:
    """Give the entries queued behind each postponed oldest entry its due time.

    Claiming looks at each entry's own due time; an entry journaled after its resource's
    oldest one was postponed would otherwise make the resource look ready at every claim,
    take a place in every batch and apply nothing, and crowd out work that is ready.
    """
    # One statement for all the heads (an executemany, pipelined by psycopg), not one each.
    params = [
        {"head_tenant": h.tenant_id, "head_resource": h.resource_id, "head_seq": h.seq,
         "head_not_before": h.not_before}
        for h in heads
    ]
    if params:
        session.connection().execute(
            update(TABLE)
            .where(TABLE.c.tenant_id == bindparam("head_tenant"),
                   TABLE.c.resource_id == bindparam("head_resource"),
                   TABLE.c.status == PENDING, TABLE.c.seq > bindparam("head_seq"))
            .values(not_before=bindparam("head_not_before")),
            params,
        )


def mark_applied(session: Session, seqs: Iterable[int], *, now: datetime) -> None:
    seq_list = list(seqs)
    if seq_list:
        # The Core table and one array parameter on PostgreSQL: a batch's few hundred seqs
        # are neither compiled into as many bind parameters nor planned as a long IN list.
        session.execute(
            update(TABLE)
            .where(is_in(session, TABLE.c.seq, seq_list, BigInteger()))
            .values(status=APPLIED, applied_at=now, last_error=None)
        )


def postpone(
    session: Session, entry: Entry, *, now: datetime, delay: timedelta, reason: str
) -> None:
    """Put a blocked entry back with a backoff; later entries of its resource wait behind it."""
    session.execute(
        update(Row)
        .where(Row.seq == entry.seq)
        .values(attempts=entry.attempts + 1, not_before=now + delay, last_error=reason)
    )


def mark_dead(session: Session, entry: Entry, *, reason: str) -> None:
    session.execute(
        update(Row)
        .where(Row.seq == entry.seq)
        .values(status=DEAD, attempts=entry.attempts + 1, last_error=reason)
    )
    session.execute(delete(Wait).where(Wait.seq == entry.seq))


def record_waits(session: Session, entry: Entry, resource_ids: Iterable[str]) -> None:
    """Remember which resources a postponed entry waits for (see `wake_waiting`)."""
    rows = [
        {"seq": entry.seq, "tenant_id": entry.tenant_id, "resource_id": resource_id}
        for resource_id in resource_ids
    ]
    if rows:
        session.execute(delete(Wait).where(Wait.seq == entry.seq))
        session.execute(insert(Wait), rows)


def wake_waiting(
    session: Session, tenant_id: str, landed: Collection[str], *, now: datetime
) -> int:
    """Make due now exactly the entries that wait for one of the resources that just landed."""
    if not landed:
        return 0
    # Usually none waits: one array parameter keeps this probe cheap to send.
    waiting = select(Wait.seq).where(
        Wait.tenant_id == tenant_id, is_in(session, Wait.resource_id, landed, String())
    )
    seqs = sorted({row.seq for row in session.execute(waiting)})
    if not seqs:
        return 0
    session.execute(update(Row).where(Row.seq.in_(seqs)).values(not_before=now))
    session.execute(delete(Wait).where(Wait.seq.in_(seqs)))
    return len(seqs)


def stale_tenants(session: Session, *, older_than: datetime) -> list[str]:
    """Tenants with work that has waited too long: its doorbell was probably lost."""
    rows = session.execute(
        select(Row.tenant_id)
        .where(
            Row.status == PENDING,
            Row.created_at < older_than,
            or_(Row.not_before.is_(None), Row.not_before <= older_than),
        )
        .group_by(Row.tenant_id)
    )
    return [row.tenant_id for row in rows]


def backlog_by_tenant(session: Session) -> dict[str, int]:
    """Pending entries per tenant (one grouped count over the pending partial index)."""
    rows = session.execute(
        select(Row.tenant_id, func.count()).where(Row.status == PENDING).group_by(Row.tenant_id)
    )
    return {tenant_id: int(count) for tenant_id, count in rows}


RATE_WINDOW = timedelta(seconds=10)


def recent_apply_rate(session: Session, *, now: datetime) -> float:
    """Entries applied per second over the last few seconds (all tenants)."""
    applied = session.execute(
        select(func.count()).select_from(Row).where(Row.applied_at > now - RATE_WINDOW)
    ).scalar_one()
    return int(applied) / RATE_WINDOW.total_seconds()


def pending_commands(
    session: Session, tenant_id: str, resource_ids: Sequence[str]
) -> dict[str, list[Command]]:
    """Pending commands of these resources, in `seq` order (usually none: one indexed probe)."""
    out: dict[str, list[Command]] = {}
    if not resource_ids:
        return out
    rows = session.execute(
        select(Row.resource_id, Row.command)
        .where(Row.tenant_id == tenant_id, Row.resource_id.in_(list(resource_ids)),
               Row.status == PENDING)
        .order_by(Row.seq)
    )
    for resource_id, command in rows:
        out.setdefault(resource_id, []).append(Command.from_json(command))
    return out


def replace_commands(session: Session, commands: Mapping[int, Command]) -> None:
    """Store what applied entries actually applied (their sealed passwords as hashes).

    Run in the applying transaction, so a sealed password never outlives its application.
    """
    if commands:
        session.connection().execute(
            update(TABLE).where(TABLE.c.seq == bindparam("entry_seq")),
            [{"entry_seq": seq, "command": command.to_json()} for seq, command in commands.items()],
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One accepted command of a resource, for its history."""

    seq: int
    kind: str
    status: str
    attempts: int
    request_id: str
    acknowledged_at: datetime
    applied_at: datetime | None
    last_error: str | None


def history(
    session: Session, tenant_id: str, resource_id: str, *, resource_type: str, limit: int
) -> list[HistoryEntry]:
    """A resource's commands, oldest first (its last `limit`)."""
    rows = session.execute(
        select(Row.seq, Row.kind, Row.status, Row.attempts, Row.request_id, Row.created_at,
               Row.applied_at, Row.last_error)
        .where(Row.tenant_id == tenant_id, Row.resource_id == resource_id,
               Row.resource_type == resource_type)
        .order_by(Row.seq.desc()).limit(limit)
    )
    return [HistoryEntry(*row) for row in reversed(list(rows))]


def last_entry_at(connection: Connection, tenant_id: str, resource_id: str) -> datetime | None:
    """When the resource's last command was acknowledged."""
    return connection.execute(
        select(func.max(Row.created_at))
        .where(Row.tenant_id == tenant_id, Row.resource_id == resource_id)
    ).scalar()
