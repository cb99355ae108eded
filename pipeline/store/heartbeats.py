"""The pipeline's heartbeats: when a worker last finished a drain, when the sweeper last ran.
See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.journal import DEPROVISION_LANE, NORMAL_LANE, PENDING
from scimflow.pipeline.store.models import JournalEntry, PipelineHeartbeat

DRAIN = "drain"
SWEEP = "sweep"


def record(session: Session, name: str, at: datetime) -> None:
    """Upsert one heartbeat (a single-row write; callers throttle how often)."""
    dialect = postgresql if is_postgres(session) else sqlite
    statement = dialect.insert(PipelineHeartbeat).values(name=name, beat_at=at)
    session.execute(
        statement.on_conflict_do_update(index_elements=["name"], set_={"beat_at": at})
    )


def last_beats(session: Session) -> dict[str, datetime]:
    rows = session.execute(select(PipelineHeartbeat.name, PipelineHeartbeat.beat_at))
    return {row.name: row.beat_at for row in rows}


def due_pending_since(session: Session, *, now: datetime, before: datetime) -> datetime | None:
    """When the oldest pending entry due by `now` was acknowledged, if that is before `before`.

    Entries postponed into the future (waiting for a member, backing off) are not due: a
    pipeline with only those has nothing to do. One lookup per lane on the pending index.
    """
    found: list[datetime] = []
    for lane in (DEPROVISION_LANE, NORMAL_LANE):
        created = session.scalar(
            select(JournalEntry.created_at)
            .where(
                JournalEntry.status == PENDING,
                JournalEntry.lane == lane,
                JournalEntry.created_at < before,
                or_(JournalEntry.not_before.is_(None), JournalEntry.not_before <= now),
            )
            .order_by(JournalEntry.seq)
            .limit(1)
        )
        if created is not None:
            found.append(created)
    return min(found) if found else None
