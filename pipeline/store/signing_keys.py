"""The keys that sign Security Event Tokens (`event_signing_keys`): newest first, unretired only.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scimflow.pipeline.events.sets import SigningKey
from scimflow.pipeline.store.event_tables import EventSigningKey


def unretired(session: Session, *, limit: int | None = None) -> list[SigningKey]:
    """The keys in use, newest first."""
    query = (
        select(EventSigningKey.kid, EventSigningKey.private_pem)
        .where(EventSigningKey.retired_at.is_(None))
        .order_by(EventSigningKey.created_at.desc(), EventSigningKey.kid)
        .limit(limit)
    )
    return [SigningKey(row.kid, row.private_pem.encode("ascii")) for row in session.execute(query)]


def store(session: Session, key: SigningKey, *, now: datetime) -> None:
    pem = key.private_key_pem.decode("ascii")
    session.add(EventSigningKey(kid=key.kid, private_pem=pem, created_at=now))
