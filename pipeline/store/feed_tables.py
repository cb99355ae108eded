"""The tables of the RFC 8936 poll feed: how far each application key has acknowledged the
events it may read. See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from scimflow.pipeline.store.base import Base


class EventFeed(Base):
    """One application key's poll feed: every event it may read at or below `position` is
    acknowledged (or reported in `setErrs`). Created on the key's first poll."""

    __tablename__ = "event_feeds"

    app_key_id: Mapped[str] = mapped_column(
        ForeignKey("app_keys.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class EventFeedAck(Base):
    """An event acknowledged out of order, above its feed's `position`: it is not handed out
    again, and goes once the position passes it."""

    __tablename__ = "event_feed_acks"

    app_key_id: Mapped[str] = mapped_column(
        ForeignKey("event_feeds.app_key_id", ondelete="CASCADE"), primary_key=True
    )
    event_position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
