"""The RFC 8936 poll feeds' SQL: each application key's position (everything at or below it
acknowledged), the acknowledgements above it, and the outstanding events.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scimflow.pipeline.store import outbox
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.event_tables import OutboxEvent
from scimflow.pipeline.store.feed_tables import EventFeed, EventFeedAck
from scimflow.pipeline.store.outbox import StoredEvent


def locked_position(session: Session, key_id: str, *, now: datetime) -> int:
    """The feed's position, its row created on the first poll and locked until the commit,
    so two polls of one key settle one after the other."""
    dialect = postgresql if is_postgres(session) else sqlite
    session.execute(dialect.insert(EventFeed).values(app_key_id=key_id, position=0,
                                                     updated_at=now).on_conflict_do_nothing())
    position = session.scalar(
        select(EventFeed.position).where(EventFeed.app_key_id == key_id).with_for_update()
    )
    return int(position or 0)


def record_acks(
    session: Session, grant: AppGrant, position: int, jtis: Sequence[str]
) -> None:
    query = select(OutboxEvent.id).where(OutboxEvent.event_id.in_(list(jtis)),
                                         OutboxEvent.id > position)
    if grant.tenants is not None:
        query = query.where(OutboxEvent.tenant_id.in_(list(grant.tenants)))
    rows = [{"app_key_id": grant.key_id, "event_position": found}
            for found in session.scalars(query)]
    if rows:
        dialect = postgresql if is_postgres(session) else sqlite
        session.execute(dialect.insert(EventFeedAck).values(rows).on_conflict_do_nothing())


def acked_above(session: Session, key_id: str, position: int) -> set[int]:
    return set(session.scalars(
        select(EventFeedAck.event_position)
        .where(EventFeedAck.app_key_id == key_id, EventFeedAck.event_position > position)
    ))


def advance(session: Session, grant: AppGrant, position: int, *, now: datetime) -> None:
    """Move the position over the acknowledged events that follow it without a gap."""
    acked = acked_above(session, grant.key_id, position)
    if not acked:
        return
    new_position = position
    for event in outbox.read_after(session, position, limit=len(acked) + 1,
                                   tenants=grant.tenants):
        if event.position not in acked:
            break
        new_position = event.position
    if new_position == position:
        return
    session.execute(update(EventFeed).where(EventFeed.app_key_id == grant.key_id)
                    .values(position=new_position, updated_at=now))
    session.execute(delete(EventFeedAck).where(EventFeedAck.app_key_id == grant.key_id,
                                               EventFeedAck.event_position <= new_position))


def outstanding(
    session: Session, grant: AppGrant, max_events: int
) -> tuple[list[StoredEvent], bool]:
    """Up to `max_events` events not yet acknowledged, and whether more wait."""
    position = int(session.scalar(
        select(EventFeed.position).where(EventFeed.app_key_id == grant.key_id)
    ) or 0)
    acked = acked_above(session, grant.key_id, position)
    events = outbox.read_after(session, position, limit=max_events + len(acked) + 1,
                               tenants=grant.tenants)
    unacked = [event for event in events if event.position not in acked]
    return unacked[:max_events], len(unacked) > max_events
