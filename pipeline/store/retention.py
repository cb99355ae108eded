"""Retention: deleting the history the pipeline no longer needs (journal, outbox, dead letters),
in small batches. See docs/ARCHITECTURE.md ("Retention").
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, sessionmaker
from sqlalchemy.sql.dml import ReturningDelete

from scimflow.pipeline.settings import ConfigError, Settings
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.journal import APPLIED
from scimflow.pipeline.store.models import (
    DeadLetter,
    JournalEntry,
    JournalWait,
    LoginDecision,
    OutboxEvent,
    WebhookAttempt,
    WebhookEndpoint,
)

# Batches per table in one scheduled run: a run stays short (the beat task's time limit), and
# whatever is left is pruned by the next one.
MAX_BATCHES_PER_RUN = 100


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many days each table keeps (0: forever), and how many rows a batch deletes."""

    journal_days: int = 7
    outbox_days: int = 7
    dead_letter_days: int = 30
    batch_size: int = 1000
    # Between two batches of a run: keeps pruning to a small share of the database's time.
    pause_seconds: float = 0.05

    def __post_init__(self) -> None:
        for name in ("journal_days", "outbox_days", "dead_letter_days"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SCIMFLOW_RETENTION_{name.upper()} must be 0 or more")
        if self.batch_size < 1:
            raise ConfigError("SCIMFLOW_RETENTION_BATCH_SIZE must be 1 or more")
        if self.pause_seconds < 0:
            raise ConfigError("SCIMFLOW_RETENTION_PAUSE_SECONDS must be 0 or more")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            journal_days=settings.retention_journal_days,
            outbox_days=settings.retention_outbox_days,
            dead_letter_days=settings.retention_dead_letter_days,
            batch_size=settings.retention_batch_size,
            pause_seconds=settings.retention_pause_seconds,
        )


@dataclass(frozen=True, slots=True)
class PruneReport:
    """Rows deleted per table (or, in a dry run, rows that would be)."""

    journal: int = 0
    outbox: int = 0
    webhook_attempts: int = 0
    dead_letters: int = 0
    login_decisions: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Predicate = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class _Table:
    """A prunable table: its key, the moment its retention counts from, what may go."""

    model: (type[JournalEntry] | type[OutboxEvent] | type[WebhookAttempt] | type[DeadLetter]
            | type[LoginDecision])
    key: InstrumentedAttribute[int]
    age: InstrumentedAttribute[Any]
    prunable: Predicate


def _applied_and_unreferenced(cutoff: datetime) -> ColumnElement[bool]:
    entry = JournalEntry
    return and_(
        entry.status == APPLIED,
        entry.applied_at < cutoff,
        ~exists().where(JournalWait.seq == entry.seq),
        ~exists().where(DeadLetter.journal_seq == entry.seq),
    )


def _past_and_delivered(cutoff: datetime) -> ColumnElement[bool]:
    """Events older than the cutoff, unless an enabled webhook endpoint of their tenant has
    not delivered them yet (the events API's readers are told to keep up within retention)."""
    behind = select(WebhookEndpoint.id).where(
        WebhookEndpoint.tenant_id == OutboxEvent.tenant_id,
        WebhookEndpoint.disabled_at.is_(None),
        WebhookEndpoint.cursor < OutboxEvent.id,
    )
    return and_(OutboxEvent.created_at < cutoff, ~exists(behind))


def _recorded(cutoff: datetime) -> ColumnElement[bool]:
    return DeadLetter.created_at < cutoff


def _attempted(cutoff: datetime) -> ColumnElement[bool]:
    return WebhookAttempt.attempted_at < cutoff


def _decided(cutoff: datetime) -> ColumnElement[bool]:
    return LoginDecision.created_at < cutoff


JOURNAL = _Table(JournalEntry, JournalEntry.seq, JournalEntry.applied_at,
                 _applied_and_unreferenced)
OUTBOX = _Table(OutboxEvent, OutboxEvent.id, OutboxEvent.created_at, _past_and_delivered)
DEAD_LETTERS = _Table(DeadLetter, DeadLetter.id, DeadLetter.created_at, _recorded)
# Attempts are kept as long as the events they tried to deliver.
WEBHOOK_ATTEMPTS = _Table(WebhookAttempt, WebhookAttempt.id, WebhookAttempt.attempted_at,
                          _attempted)
# A user's history is its journal entries and its login decisions: both kept as long.
LOGIN_DECISIONS = _Table(LoginDecision, LoginDecision.id, LoginDecision.created_at, _decided)


def prune(
    sessions: sessionmaker[Session],
    policy: RetentionPolicy,
    *,
    now: datetime,
    dry_run: bool = False,
    max_batches: int | None = MAX_BATCHES_PER_RUN,
    sleep: Callable[[float], None] = time.sleep,
) -> PruneReport:
    """Delete (or, with `dry_run`, count) what each table no longer keeps.

    Stops a table when a batch comes back short or after `max_batches` batches (None: when
    nothing is left), so a scheduled run stays bounded and the next run goes on.
    """
    def one(table: _Table, days: int) -> int:
        if days == 0:
            return 0
        cutoff = now - timedelta(days=days)
        if dry_run:
            return _count(sessions, table, cutoff)
        return _delete_in_batches(
            sessions, table, cutoff, policy,
            max_batches=max_batches, pause=lambda: sleep(policy.pause_seconds),
        )

    return PruneReport(
        journal=one(JOURNAL, policy.journal_days),
        outbox=one(OUTBOX, policy.outbox_days),
        webhook_attempts=one(WEBHOOK_ATTEMPTS, policy.outbox_days),
        dead_letters=one(DEAD_LETTERS, policy.dead_letter_days),
        login_decisions=one(LOGIN_DECISIONS, policy.journal_days),
        dry_run=dry_run,
    )


def _count(sessions: sessionmaker[Session], table: _Table, cutoff: datetime) -> int:
    with unit_of_work(sessions) as session:
        counted = session.scalar(
            select(func.count()).select_from(table.model)
            .where(table.prunable(cutoff), _not_newest(table))
        )
    return int(counted or 0)


def _delete_in_batches(
    sessions: sessionmaker[Session],
    table: _Table,
    cutoff: datetime,
    policy: RetentionPolicy,
    *,
    max_batches: int | None,
    pause: Callable[[], None],
) -> int:
    deleted, reached = 0, None
    batches = itertools.count() if max_batches is None else range(max_batches)
    for number in batches:
        if number and policy.pause_seconds:
            pause()
        with unit_of_work(sessions) as session:
            ages = session.scalars(_batch(table, cutoff, reached, policy.batch_size)).all()
        deleted += len(ages)
        if len(ages) < policy.batch_size:
            break
        reached = max(ages)
    return deleted


def _batch(
    table: _Table, cutoff: datetime, reached: datetime | None, batch_size: int
) -> ReturningDelete[Any]:
    """One batch: delete the oldest prunable rows, returning their ages."""
    chosen = select(table.key).where(table.prunable(cutoff), _not_newest(table))
    if reached is not None:
        # What is older than the previous batch reached was deleted, or stays (still named, or
        # held by another transaction): no need to walk over it again.
        chosen = chosen.where(table.age >= reached)
    chosen = (
        chosen.order_by(table.age).limit(batch_size)
        .with_for_update(skip_locked=True)
        # The subquery reads the table the DELETE deletes from: its own FROM, not the DELETE's.
        .correlate(None)
    )
    return (
        delete(table.model).where(table.key.in_(chosen)).returning(table.age)
        .execution_options(synchronize_session=False)
    )


def _not_newest(table: _Table) -> ColumnElement[bool]:
    newest = aliased(table.model)
    return table.key < select(func.max(getattr(newest, table.key.key))).scalar_subquery()
