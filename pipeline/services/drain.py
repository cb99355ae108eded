"""The worker side: `Drainer` claims ready resources, applies their journal entries and writes
the batch set-based, one transaction per batch.
See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.apply import Blocked, Outcome, apply_resource
from scimflow.pipeline.commands import Entry
from scimflow.pipeline.passwords.crypto import Argon2idHasher
from scimflow.pipeline.passwords.unsealing import SealedPasswords, holds_sealed_password
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.services.batch_writes import GONE, write_outcomes
from scimflow.pipeline.services.change_events import PendingEvent, outbox_rows
from scimflow.pipeline.services.liveness import Pulse
from scimflow.pipeline.services.tenant_protocols import ProtocolSource, as_protocol_source
from scimflow.pipeline.store import (
    acknowledged,
    claim,
    dead_letters,
    directory,
    heartbeats,
    journal,
    outbox,
)
from scimflow.pipeline.store.db import is_transient, unit_of_work
from scimflow.pipeline.store.directory import APPLIED_TABLES, Applied, Key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter for entries waiting on a reference."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    limit: int = 10

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
        ceiling = min(self.max_seconds, self.base_seconds * 2**attempts)
        return timedelta(seconds=ceiling * (0.5 + rng() / 2))


@dataclass(frozen=True, slots=True)
class AppliedEntry:
    """One journal entry a batch applied, for the worker's log line and metrics: from the
    API request that acknowledged it to its applying, and whether it took access away."""

    seq: int
    tenant_id: str
    resource_id: str
    resource_type: str
    kind: str
    request_id: str
    acknowledged_at: datetime
    applied_at: datetime
    deprovisions: bool

    @property
    def latency_seconds(self) -> float:
        applied, acknowledged = self.applied_at, self.acknowledged_at
        if (applied.tzinfo is None) != (acknowledged.tzinfo is None):
            # SQLite reads timestamps back naive; both are UTC.
            applied, acknowledged = applied.replace(tzinfo=None), acknowledged.replace(tzinfo=None)
        return (applied - acknowledged).total_seconds()


@dataclass(slots=True)
class DrainReport:
    resources: int = 0
    applied: int = 0
    postponed: int = 0
    dead: int = 0
    deprovisioned: int = 0
    woken_tenants: set[str] = field(default_factory=set)
    more_waiting: bool = False
    # Tenants with new events: their webhook endpoints have something to deliver.
    event_tenants: set[str] = field(default_factory=set)
    # Seconds until the soonest postponed entry is due again (None: nothing postponed).
    retry_in: float | None = None
    # What was applied, entry by entry (the adapter logs and counts them).
    applied_entries: list[AppliedEntry] = field(default_factory=list)


class Drainer:
    """Applies pending journal entries in batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        protocol: ScimProtocol | ProtocolSource,
        *,
        batch_size: int = 200,
        retry: RetryPolicy | None = None,
        clock: Clock = utc_now,
        passwords: SealedPasswords | None = None,
    ) -> None:
        self._sessions = sessions
        # Without a key, a sealed password cannot be applied: its entry retries, then is a
        # dead letter naming why (the production worker refuses to start without one).
        self._passwords = passwords or SealedPasswords(None, Argon2idHasher())
        self._protocols = as_protocol_source(protocol)
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._pulse = Pulse(sessions, heartbeats.DRAIN, clock=clock)

    def drain_once(self, tenant_id: str | None = None) -> DrainReport:
        """Apply one batch; `more_waiting` says more work is probably waiting."""
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            claimed = claim.ready_resources(
                session, now=now, limit=self._batch_size, tenant_id=tenant_id
            )
            if not claimed:
                return DrainReport()
            pending = journal.pending_entries(session, claimed, now=now)
            journal.hold_behind(session, pending.postponed_heads)
            due, deferred = _within_hash_budget(_by_resource(pending.due),
                                                PASSWORD_HASHES_PER_BATCH)
            batch = self._apply(session, due)
            # Stamped after applying, just before the writes and the commit: `applied_at`
            # minus `created_at` is then the real acknowledgement-to-applied latency.
            written_at = self._clock()
            report = self._write(session, batch, written_at)
            outbox.append(session, outbox_rows(batch.events, written_at))
        report.resources = len(claimed)
        report.event_tenants = {event.subject.tenant for event in batch.events}
        # A full batch probably left work behind; so did one of the deprovisioning lane, which
        # the claim keeps to that lane on purpose (store/claim.py), and one that held
        # resources whose oldest entry turned out to be postponed (held back now).
        report.more_waiting = (
            len(claimed) >= self._batch_size
            or batch.urgent
            or bool(pending.postponed_heads)
            or deferred
        )
        return report

    def drain(
        self, tenant_id: str | None = None, *, max_batches: int = 1000,
        after_batch: Callable[[DrainReport], None] | None = None,
    ) -> DrainReport:
        """Drain until nothing is ready (or `max_batches`), summing the reports; `after_batch`
        hears of each committed batch (its events can be delivered at once, not after the
        whole drain)."""
        total = report = DrainReport()
        for _ in range(max_batches):
            report = self.drain_once(tenant_id)
            if after_batch is not None:
                after_batch(report)
            _add(total, report)
            if report.resources == 0 or (not report.more_waiting and not report.woken_tenants):
                break
        # Stopped by `max_batches` with work left: the caller rings again rather than leave
        # it to the sweeper.
        total.more_waiting = report.more_waiting
        self._pulse.beat()
        return total

    def _apply(self, session: Session, by_resource: dict[Key, list[Entry]]) -> Batch:
        batch = Batch(entries=by_resource)
        types = {key: entries[0].command.resource_type for key, entries in by_resource.items()}
        current = _load_applied(session, types)
        for table in APPLIED_TABLES:
            keys = [key for key, type_name in types.items() if type_name == table.resource_type]
            self._learn_references(session, batch, [by_resource[k] for k in keys])
            for key in keys:
                apply = self._applier(session, batch, key, table.resource_type, current.get(key))
                outcome = _apply_isolated(apply, by_resource[key])
                batch.outcomes[key] = outcome
                if outcome.exists:
                    batch.known.setdefault(key[0], {})[key[1]] = table.resource_type
        return batch

    def _applier(
        self, session: Session, batch: Batch, key: Key, resource_type: str,
        applied: Applied | None,
    ) -> Callable[[list[Entry]], Outcome]:
        """`apply_resource` bound to one resource's applied state, members and tenant."""
        tenant_id, resource_id = key
        if tenant_id not in batch.protocols:
            # One protocol per tenant for the whole batch: its schemas, read once per batch.
            batch.protocols[tenant_id] = self._protocols.for_tenant(tenant_id, session)
        return partial(
            apply_resource,
            batch.protocols[tenant_id],
            resource_type,
            applied.data if applied else None,
            version=applied.version if applied else 0,
            known_ids=batch.known.get(tenant_id, {}),
            load_members=partial(directory.members_of, session, tenant_id, resource_id),
            prepare=self._passwords.hashed,
        )

    def _learn_references(
        self, session: Session, batch: Batch, resources: list[list[Entry]]
    ) -> None:
        """Find which referenced members exist, and which are gone for good.

        A member that is neither applied nor acknowledged was deleted after the membership
        change naming it was accepted (deprovisioning can overtake it, see store/claim.py).
        Adding it is moot, since its deletion ends its memberships anyway: it is known as
        GONE, so the change applies without it instead of waiting for a user who never lands.
        """
        referenced: dict[str, set[str]] = defaultdict(set)
        for entries in resources:
            for entry in entries:
                referenced[entry.tenant_id].update(entry.command.member_refs())
        for tenant_id, ids in referenced.items():
            known = batch.known.setdefault(tenant_id, {})
            known.update(directory.existing_types(session, tenant_id, ids - known.keys()))
            missing = ids - known.keys()
            acknowledged_ids = acknowledged.existing_types(session, tenant_id, missing)
            known.update(dict.fromkeys(missing - acknowledged_ids.keys(), GONE))

    def _write(self, session: Session, batch: Batch, now: datetime) -> DrainReport:
        try:
            with session.begin_nested():
                report, events = self._write_all(session, batch, batch.outcomes, now)
            batch.events.extend(events)
            return report
        except Exception as ex:
            if is_transient(ex):
                raise
            # Resources of the batch trade a unique key (ann -> tmp, bob -> ann, tmp -> bob):
            # their final states collide, though every step was unique when it was accepted.
            # Anything else that fails belongs to one resource: entry by entry, it is found
            # and charged, and every other resource of the batch is written.
            if not isinstance(ex, IntegrityError):
                log.warning("Writing a batch failed (%s); writing it entry by entry.", ex)
            return self._write_in_seq_order(session, batch, now)

    def _write_in_seq_order(self, session: Session, batch: Batch, now: datetime) -> DrainReport:
        """Apply the batch again one entry at a time, in the journal's global order.

        That is the order in which the API checked each unique key, so step by step the
        writes succeed; an entry that still conflicts waits and retries, and the entries of
        its resource behind it wait with it.
        """
        report = DrainReport()
        states: dict[Key, Applied | None] = dict(_load_applied(
            session, {key: outcome.resource_type for key, outcome in batch.outcomes.items()}
        ))
        stopped: set[Key] = set()
        for entry in sorted((e for es in batch.entries.values() for e in es), key=_seq):
            key = entry.key
            if key in stopped:
                continue
            try:
                apply = self._applier(
                    session, batch, key, entry.command.resource_type, states.get(key)
                )
                outcome = apply([entry])
                with session.begin_nested():
                    written, events = self._write_all(session, batch, {key: outcome}, now)
                _add(report, written)
                batch.events.extend(events)
            except Exception as ex:
                if is_transient(ex):
                    raise
                self._settle_blocked(session, _step_failure(entry, ex), now, report)
                stopped.add(key)
                continue
            if outcome.blocked is not None:
                stopped.add(key)
            states[key] = None if outcome.state is None else Applied(outcome.state, outcome.version)
        return report

    def _write_all(
        self, session: Session, batch: Batch, outcomes: dict[Key, Outcome], now: datetime
    ) -> tuple[DrainReport, list[PendingEvent]]:
        """Write outcomes; return the report and their events, which the caller keeps once
        the savepoint is released (a rolled-back write tells nobody)."""
        report = DrainReport()
        events = write_outcomes(session, outcomes, batch.known, now)
        applied = [seq for o in outcomes.values() for seq in o.applied]
        journal.mark_applied(session, applied, now=now)
        journal.replace_commands(
            session, {seq: c for o in outcomes.values() for seq, c in o.prepared.items()}
        )
        for outcome in outcomes.values():
            if outcome.blocked is not None:
                self._settle_blocked(session, outcome.blocked, now, report)
        self._wake_waiting(session, outcomes, now, report)
        report.applied += len(applied)
        report.applied_entries.extend(_applied_entries(batch, applied, now))
        report.deprovisioned += sum(o.deprovisioned for o in outcomes.values())
        return report, events

    def _wake_waiting(
        self, session: Session, outcomes: dict[Key, Outcome], now: datetime, report: DrainReport
    ) -> None:
        landed: dict[str, set[str]] = defaultdict(set)
        for (tenant_id, resource_id), outcome in outcomes.items():
            if outcome.exists and not outcome.existed:
                landed[tenant_id].add(resource_id)
        for tenant_id, resource_ids in landed.items():
            if journal.wake_waiting(session, tenant_id, resource_ids, now=now):
                report.woken_tenants.add(tenant_id)

    def _settle_blocked(
        self, session: Session, blocked: Blocked, now: datetime, report: DrainReport
    ) -> None:
        entry, reason = blocked.entry, _printable(blocked.reason)
        if blocked.permanent or entry.attempts + 1 >= self._retry.limit:
            dead_letters.record(session, entry, reason=reason, now=now)
            report.dead += 1
            return
        delay = self._retry.delay(entry.attempts)
        journal.postpone(session, entry, now=now, delay=delay, reason=reason)
        journal.record_waits(session, entry, blocked.waiting_for)
        report.postponed += 1
        report.retry_in = _soonest(report.retry_in, delay.total_seconds())


@dataclass(slots=True)
class Batch:
    """The outcomes of one drain, and the member ids known to exist, per tenant."""

    outcomes: dict[Key, Outcome] = field(default_factory=dict)
    known: dict[str, dict[str, str]] = field(default_factory=dict)
    entries: dict[Key, list[Entry]] = field(default_factory=dict)
    protocols: dict[str, ScimProtocol] = field(default_factory=dict)
    # The events of what was written, appended to the outbox last (store/outbox.py).
    events: list[PendingEvent] = field(default_factory=list)

    @property
    def urgent(self) -> bool:
        """Whether the batch is of the deprovisioning lane."""
        return any(e.command.deprovisions for es in self.entries.values() for e in es)


def _seq(entry: Entry) -> int:
    return entry.seq


def _applied_entries(batch: Batch, seqs: list[int], now: datetime) -> list[AppliedEntry]:
    wanted = set(seqs)
    return [
        AppliedEntry(seq=e.seq, tenant_id=e.tenant_id, resource_id=e.resource_id,
                     resource_type=e.command.resource_type, kind=str(e.command.kind),
                     request_id=e.request_id, acknowledged_at=e.created_at, applied_at=now,
                     deprovisions=e.command.deprovisions)
        for entries in batch.entries.values() for e in entries if e.seq in wanted
    ]


def _failure(entry: Entry, error: Exception) -> Blocked:
    """An entry that failed unexpectedly: retried with backoff, then a dead letter.

    Logged with its traceback and request id; the reason names both, for the operator who
    finds it in `scimflow status` or `dead-letters list`.
    """
    log.error(
        "Applying journal entry %d (%s %s, request %s) failed.",
        entry.seq, entry.command.resource_type, entry.resource_id, entry.request_id or "-",
        exc_info=error,
    )
    detail = f"{type(error).__name__}: {error}"
    return Blocked(entry, f"apply failed: {detail} (request {entry.request_id or '-'})")


# Sealed passwords hashed per batch, at most (about 25 ms of CPU each at OWASP's argon2id
# parameters): a batch of creates carrying passwords stays near 0.2 s, and a drain task's few
# batches near a second, so a deprovisioning doorbell soon gets a worker; the rest of the
# claimed resources wait for the next batch.
PASSWORD_HASHES_PER_BATCH = 8


def _by_resource(entries: list[Entry]) -> dict[Key, list[Entry]]:
    """Entries grouped by the resource they write, resources in the order of their first."""
    grouped: dict[Key, list[Entry]] = defaultdict(list)
    for entry in entries:
        grouped[entry.key].append(entry)
    return grouped


def _load_applied(session: Session, types: dict[Key, str]) -> dict[Key, Applied]:
    """The applied state of these resources (each key with its type), one query per table."""
    states: dict[Key, Applied] = {}
    for table in APPLIED_TABLES:
        keys = [key for key, type_name in types.items() if type_name == table.resource_type]
        states.update(directory.load(session, table, keys))
    return states


def _within_hash_budget(
    by_resource: dict[Key, list[Entry]], budget: int
) -> tuple[dict[Key, list[Entry]], bool]:
    """The first resources whose sealed passwords fit `budget` (at least one resource), and
    whether any resource was left for the next batch."""
    kept: dict[Key, list[Entry]] = {}
    hashes = 0
    for key, resource_entries in by_resource.items():
        needed = sum(holds_sealed_password(e.command) for e in resource_entries)
        if needed and kept and hashes + needed > budget:
            return kept, True
        hashes += needed
        kept[key] = resource_entries
    return kept, False


def _apply_isolated(apply: Callable[[list[Entry]], Outcome], entries: list[Entry]) -> Outcome:
    """Apply a resource's entries; if one fails unexpectedly, those before it, and charge it.

    The failing entry is found by applying ever longer prefixes (a rare path: one resource,
    a handful of entries), so the entries acknowledged before it still apply and only its
    own request is named in the failure.
    """
    try:
        return apply(entries)
    except Exception as ex:
        if is_transient(ex):
            raise
    outcome = apply([])
    for count in range(1, len(entries) + 1):
        try:
            outcome = apply(entries[:count])
        except Exception as ex:
            if is_transient(ex):
                raise
            if outcome.blocked is None:
                outcome.blocked = _failure(entries[count - 1], ex)
            return outcome
    return outcome  # the failure did not recur


def _step_failure(entry: Entry, error: Exception) -> Blocked:
    """A unique key still in use when the entry's turn comes (it waits), or any failure."""
    if isinstance(error, IntegrityError):
        return Blocked(entry, f"unique key conflict: {error.orig}")
    return _failure(entry, error)


def _printable(text: str, limit: int = 1000) -> str:
    """A reason the journal can store (no NUL) and an operator can read (bounded)."""
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _soonest(current: float | None, candidate: float | None) -> float | None:
    if current is None:
        return candidate
    return current if candidate is None else min(current, candidate)


def _add(total: DrainReport, report: DrainReport) -> None:
    total.resources += report.resources
    total.applied += report.applied
    total.postponed += report.postponed
    total.dead += report.dead
    total.deprovisioned += report.deprovisioned
    total.woken_tenants |= report.woken_tenants
    total.event_tenants |= report.event_tenants
    total.retry_in = _soonest(total.retry_in, report.retry_in)
    total.applied_entries.extend(report.applied_entries)
