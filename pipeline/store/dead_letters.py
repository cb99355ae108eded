"""Dead letters: commands that could not be applied within their retry budget.
See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.commands import Command, Entry
from scimflow.pipeline.errors import NotFound, ScimError
from scimflow.pipeline.store import journal
from scimflow.pipeline.store.models import DeadLetter, JournalEntry


class AlreadySettled(ScimError):
    """A dead letter already replayed or discarded: settling it again would apply it twice
    or undo a decision."""

    status = 409
    default_detail = "This dead letter is already settled."


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
        statement = statement.where(DeadLetter.replayed_at.is_(None),
                                    DeadLetter.discarded_at.is_(None))
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
    letter = _unsettled(session, dead_letter_id)
    original = session.get(JournalEntry, letter.journal_seq)
    if original is None:
        raise NotFound(f"Journal entry {letter.journal_seq} is gone.")
    command = Command.from_json(original.command)
    journal.append(session, letter.tenant_id, command, now=now, request_id=f"replay-{letter.id}")
    session.execute(update(DeadLetter).where(DeadLetter.id == letter.id).values(replayed_at=now))
    return letter.tenant_id


def discard(session: Session, dead_letter_id: int, *, now: datetime) -> str:
    """Settle a dead letter without applying it; it stays listed as discarded. Returns the
    tenant id."""
    letter = _unsettled(session, dead_letter_id)
    session.execute(update(DeadLetter).where(DeadLetter.id == letter.id).values(discarded_at=now))
    return letter.tenant_id


def _unsettled(session: Session, dead_letter_id: int) -> DeadLetter:
    # Locked: two operators settling one letter at once cannot both replay it.
    letter = session.get(DeadLetter, dead_letter_id, with_for_update=True)
    if letter is None:
        raise NotFound(f"No dead letter {dead_letter_id}.")
    if letter.replayed_at is not None:
        raise AlreadySettled(f"Dead letter {dead_letter_id} was already replayed.")
    if letter.discarded_at is not None:
        raise AlreadySettled(f"Dead letter {dead_letter_id} was discarded.")
    return letter
