"""Dead letters: commands that could not be applied within their retry budget.
See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.commands import Command, Entry
from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.store import journal
from scimflow.pipeline.store.models import DeadLetter, JournalEntry


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    id: int
    journal_seq: int
    tenant_id: str
    resource_id: str
    reason: str
    created_at: datetime
    replayed_at: datetime | None


def record(session: Session, entry: Entry, *, reason: str, now: datetime) -> None:
    journal.mark_dead(session, entry, reason=reason)
    session.execute(
        insert(DeadLetter).values(
            journal_seq=entry.seq,
            tenant_id=entry.tenant_id,
            resource_id=entry.resource_id,
            reason=reason,
            created_at=now,
        )
    )


def list_dead_letters(
    session: Session, *, tenant_id: str | None = None, include_replayed: bool = False
) -> list[DeadLetterView]:
    statement = select(DeadLetter).order_by(DeadLetter.id)
    if tenant_id is not None:
        statement = statement.where(DeadLetter.tenant_id == tenant_id)
    if not include_replayed:
        statement = statement.where(DeadLetter.replayed_at.is_(None))
    return [
        DeadLetterView(
            d.id, d.journal_seq, d.tenant_id, d.resource_id, d.reason, d.created_at, d.replayed_at
        )
        for d in session.execute(statement).scalars()
    ]


def replay(session: Session, dead_letter_id: int, *, now: datetime) -> str:
    """Append the dead command to the journal again (it runs after everything accepted since).

    Returns the tenant id, so the caller can ring its doorbell after commit.
    """
    letter = session.get(DeadLetter, dead_letter_id)
    if letter is None or letter.replayed_at is not None:
        raise NotFound(f"No dead letter {dead_letter_id} waiting for replay.")
    original = session.get(JournalEntry, letter.journal_seq)
    if original is None:
        raise NotFound(f"Journal entry {letter.journal_seq} is gone.")
    command = Command.from_json(original.command)
    journal.append(session, letter.tenant_id, command, now=now, request_id=f"replay-{letter.id}")
    session.execute(update(DeadLetter).where(DeadLetter.id == letter.id).values(replayed_at=now))
    return letter.tenant_id
