"""What operators see: tenants, a tenant's directory, a resource's history, dead letters and
webhook deliveries. One read model for the console (api/console/) and the CLI (ops/).
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.commands import Command
from scimflow.pipeline.errors import InvalidValue, NotFound
from scimflow.pipeline.ports import Clock, Dispatcher, utc_now
from scimflow.pipeline.services.history_words import summarise
from scimflow.pipeline.services.traffic import minute_of
from scimflow.pipeline.store import (
    dead_letters,
    directory_view,
    history_view,
    overview,
    traffic,
)
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenants import find_tenant

ResourceStatus = Literal["active", "inactive", "pending", "waiting", "dead-lettered", "deleted"]

MAX_DIRECTORY_LIMIT = 500
MAX_LIST_LIMIT = 1000
HISTORY_LIMIT = 500
EVENTS_LIMIT = 200
LOGINS_LIMIT = 100
REFUSALS_WINDOW = timedelta(hours=1)
WAITING_PREFIX = "waiting for members: "


@dataclass(frozen=True, slots=True)
class TenantOverview:
    tenant_id: str
    name: str
    disabled: bool
    backlog: int
    oldest_pending_seconds: float | None
    # Commands applied per second over the last minute.
    drain_rate: float
    dead_letters: int
    deprovision_p50_seconds: float | None
    deprovision_p99_seconds: float | None
    last_write_at: datetime | None
    last_applied_at: datetime | None
    # "Okta", "Microsoft Entra ID", "Google Workspace", "OneLogin" or the raw User-Agent.
    idp_dialect: str | None
    refused_last_hour: int
    # Pending entries that failed at least once: waiting for a member, or backing off.
    retrying: int = 0


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    resource_id: str
    resource_type: Literal["User", "Group"]
    # userName of a user, displayName of a group.
    name: str
    external_id: str | None
    emails: tuple[str, ...]
    status: ResourceStatus
    source: Literal["scim", "jit"]
    last_write_at: datetime | None
    last_applied_at: datetime | None
    # A user's groups, or a group's member count as a one-item tuple ("12 members").
    memberships: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    tenant: TenantOverview
    query: str
    resource_type: Literal["User", "Group"] | None
    rows: tuple[DirectoryRow, ...]
    # More rows match than were returned.
    truncated: bool


@dataclass(frozen=True, slots=True)
class HistoryLine:
    seq: int
    request_id: str
    # The IdP's operation in words: "created", "replaced", "set active to false",
    # "added 2 members", "deleted".
    summary: str
    status: str
    acknowledged_at: datetime
    applied_at: datetime | None
    attempts: int
    # What it waited for (resource ids), while it waited or the last time it did.
    waited_for: tuple[str, ...]
    last_error: str | None
    dead_letter_id: int | None
    dead_letter_reason: str | None
    dead_letter_settled: bool


@dataclass(frozen=True, slots=True)
class EventLine:
    event_id: str
    type: str
    occurred_at: datetime
    # "delivered to 2 endpoints", "waiting", "no endpoint": from the delivery positions.
    delivery: str


@dataclass(frozen=True, slots=True)
class LoginLine:
    decided_at: datetime
    issuer: str
    subject: str
    decision: str
    reason: str
    action: str


@dataclass(frozen=True, slots=True)
class ResourceTrace:
    tenant: TenantOverview
    resource: DirectoryRow
    history: tuple[HistoryLine, ...]
    events: tuple[EventLine, ...]
    logins: tuple[LoginLine, ...]


@dataclass(frozen=True, slots=True)
class DeadLetterLine:
    id: int
    # The journal entry it was (what `scimflow trace` lists as seq).
    journal_seq: int
    tenant_id: str
    tenant_name: str
    resource_id: str
    resource_type: str
    resource_name: str
    summary: str
    reason: str
    created_at: datetime
    # "replayed" or "discarded" once settled.
    settled: str | None
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    endpoint_id: str
    endpoint_url: str
    tenant_name: str
    event_id: str
    attempted_at: datetime
    status_code: int | None
    outcome: str
    duration_ms: float | None


class Operations:
    """Read through `sessions`; replaying rings the workers through `dispatcher`.

    Tenants are named by name or id; resources by id, userName, externalId or displayName.
    Unknown ones raise pipeline.errors.NotFound; a settled dead letter replayed or discarded
    again raises pipeline.store.dead_letters.AlreadySettled (409).
    """

    def __init__(self, sessions: sessionmaker[Session], dispatcher: Dispatcher,
                 clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._dispatcher = dispatcher
        self._clock = clock

    def tenants(self) -> list[TenantOverview]:
        with unit_of_work(self._sessions) as session:
            return self._overviews(session, None)

    def tenant(self, name_or_id: str) -> TenantOverview:
        with unit_of_work(self._sessions) as session:
            return self._tenant(session, name_or_id)

    def directory(self, tenant: str, query: str = "",
                  resource_type: Literal["User", "Group"] | None = None,
                  limit: int = 50) -> DirectoryPage:
        """Search by userName, externalId, email or displayName (case-insensitive prefix;
        emails by a query holding an `@`), by name; without a query, the newest first."""
        _check_limit(limit, MAX_DIRECTORY_LIMIT)
        if resource_type not in (None, "User", "Group"):
            raise InvalidValue("The resource type is User or Group.")
        query = _checked_text(query)
        with unit_of_work(self._sessions) as session:
            overview_ = self._tenant(session, tenant)
            found, truncated = directory_view.search_resources(
                session, overview_.tenant_id, query.strip(), resource_type, limit=limit)
            rows = _directory_rows(session, overview_.tenant_id, found)
        return DirectoryPage(overview_, query, resource_type, tuple(rows), truncated)

    def trace(self, tenant: str, reference: str) -> ResourceTrace:
        reference = _checked_text(reference).strip()
        with unit_of_work(self._sessions) as session:
            overview_ = self._tenant(session, tenant)
            tenant_id = overview_.tenant_id
            found = (directory_view.find_resource(session, tenant_id, reference)
                     if reference else None)
            journal = history_view.journal_of(session, tenant_id,
                                              found.id if found else reference,
                                              limit=HISTORY_LIMIT)
            if found is not None:
                row = _directory_rows(session, tenant_id, [found])[0]
            elif journal:
                row = _deleted_row(session, tenant_id, reference, journal)
            else:
                raise NotFound(f"No user or group {reference!r} in tenant {overview_.name}.")
            history = _history(session, journal)
            events = _events(session, tenant_id, row.resource_id)
            logins = _logins(session, tenant_id, row)
        return ResourceTrace(overview_, row, history, events, logins)

    def dead_letters(self, tenant: str | None = None, *, include_settled: bool = False,
                     limit: int = 200) -> list[DeadLetterLine]:
        _check_limit(limit, MAX_LIST_LIMIT)
        with unit_of_work(self._sessions) as session:
            tenant_id = None if tenant is None else find_tenant(session, _checked_text(tenant)).id
            records = history_view.dead_letter_records(
                session, tenant_id=tenant_id, include_settled=include_settled, limit=limit)
            return _dead_letter_lines(session, records)

    def replay(self, dead_letter_id: int) -> DeadLetterLine:
        """Journal the dead command again and ring its tenant's workers."""
        with unit_of_work(self._sessions) as session:
            tenant_id = dead_letters.replay(session, dead_letter_id, now=self._clock())
        self._dispatcher.ring(tenant_id)
        return self._dead_letter(dead_letter_id)

    def discard(self, dead_letter_id: int) -> DeadLetterLine:
        """Settle a dead letter without applying it (kept for the record)."""
        with unit_of_work(self._sessions) as session:
            dead_letters.discard(session, dead_letter_id, now=self._clock())
        return self._dead_letter(dead_letter_id)

    def deliveries(self, tenant: str | None = None, *, limit: int = 200) -> list[DeliveryLine]:
        _check_limit(limit, MAX_LIST_LIMIT)
        with unit_of_work(self._sessions) as session:
            tenant_id = None if tenant is None else find_tenant(session, _checked_text(tenant)).id
            attempts = history_view.delivery_attempts(session, tenant_id=tenant_id, limit=limit)
        return [
            DeliveryLine(a.endpoint_id, a.endpoint_url, a.tenant_name, a.event_id,
                         a.attempted_at, a.status_code, _outcome(a.status_code, a.error),
                         a.latency_ms)
            for a in attempts
        ]

    def _tenant(self, session: Session, name_or_id: str) -> TenantOverview:
        return self._overviews(session, [find_tenant(session, _checked_text(name_or_id)).id])[0]

    def _overviews(self, session: Session, tenant_ids: list[str] | None) -> list[TenantOverview]:
        return tenant_overviews(session, now=self._clock(), tenant_ids=tenant_ids)

    def _dead_letter(self, dead_letter_id: int) -> DeadLetterLine:
        with unit_of_work(self._sessions) as session:
            records = history_view.dead_letter_records(session, ids=[dead_letter_id], limit=1)
            return _dead_letter_lines(session, records)[0]


def tenant_overviews(session: Session, *, now: datetime,
                     tenant_ids: list[str] | None = None) -> list[TenantOverview]:
    """Every tenant's figures (or these tenants'), by name, within the caller's transaction
    (`scimflow status` reads them beside the pipeline's liveness)."""
    figures = overview.tenant_figures(session, now=now, tenant_ids=tenant_ids)
    dialects = traffic.dialects(session, tenant_ids)
    # Whole minutes: the counts are kept per minute.
    refused = traffic.refusals_since(session, minute_of(now - REFUSALS_WINDOW), tenant_ids)
    return [_overview(f, now, dialects.get(f.tenant_id), refused.get(f.tenant_id, 0))
            for f in figures]


def _check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise InvalidValue(f"The limit is between 1 and {maximum}.")


def _checked_text(value: str) -> str:
    # NUL is refused by PostgreSQL mid-query: a 400 here, not a database error.
    if "\x00" in value or len(value) > 1024:
        raise InvalidValue("The text is at most 1024 characters, without NUL.")
    return value


def _overview(f: overview.TenantFigures, now: datetime, dialect: str | None,
              refused: int) -> TenantOverview:
    oldest = f.oldest_pending_at
    return TenantOverview(
        tenant_id=f.tenant_id, name=f.name, disabled=f.disabled, backlog=f.backlog,
        oldest_pending_seconds=None if oldest is None else round(
            (now - oldest).total_seconds(), 1),
        drain_rate=round(f.applied_last_minute / overview.RATE_WINDOW.total_seconds(), 2),
        dead_letters=f.dead_letters,
        deprovision_p50_seconds=percentile(f.deprovision_latencies, 0.50),
        deprovision_p99_seconds=percentile(f.deprovision_latencies, 0.99),
        last_write_at=f.last_write_at, last_applied_at=f.last_applied_at,
        idp_dialect=dialect, refused_last_hour=refused, retrying=f.retrying,
    )


def percentile(sorted_values: tuple[float, ...], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return round(sorted_values[index], 3)


def _directory_rows(session: Session, tenant_id: str,
                    found: list[directory_view.ResourceRow]) -> list[DirectoryRow]:
    ids = [row.id for row in found]
    states = directory_view.journal_states(session, tenant_id, ids)
    groups = directory_view.groups_of(session, tenant_id,
                                [r.id for r in found if r.resource_type == "User"])
    counts = directory_view.member_counts(session, tenant_id,
                                    [r.id for r in found if r.resource_type == "Group"])
    return [_directory_row(row, states[row.id], groups, counts) for row in found]


def _directory_row(row: directory_view.ResourceRow, state: directory_view.JournalState,
                   groups: dict[str, list[str]], counts: dict[str, int]) -> DirectoryRow:
    is_user = row.resource_type == "User"
    memberships = (tuple(groups.get(row.id, ())) if is_user
                   else (f"{counts.get(row.id, 0)} members",))
    return DirectoryRow(
        resource_id=row.id, resource_type=cast(Any, row.resource_type),
        name=str(row.data.get("userName" if is_user else "displayName") or row.id),
        external_id=row.data.get("externalId"), emails=_emails(row.data),
        status=_status(state, row.data, is_user),
        source="jit" if row.source == "jit" else "scim",
        last_write_at=row.updated_at, last_applied_at=state.last_applied_at,
        memberships=memberships,
    )


def _status(state: directory_view.JournalState, data: dict[str, Any],
            is_user: bool) -> ResourceStatus:
    if state.dead_lettered:
        return "dead-lettered"
    if state.waiting:
        return "waiting"
    if state.pending:
        return "pending"
    return "inactive" if is_user and data.get("active") is False else "active"


def _emails(data: dict[str, Any]) -> tuple[str, ...]:
    emails = data.get("emails")
    if not isinstance(emails, list):
        return ()
    return tuple(str(e["value"]) for e in emails if isinstance(e, dict) and e.get("value"))


def _deleted_row(session: Session, tenant_id: str, resource_id: str,
                 journal: list[history_view.JournalLine]) -> DirectoryRow:
    """A resource no longer acknowledged: named from the last full body it was sent."""
    data: dict[str, Any] = next(
        (line.command["resource"] for line in reversed(journal)
         if isinstance(line.command.get("resource"), dict)), {})
    is_user = journal[-1].resource_type == "User"
    states = directory_view.journal_states(session, tenant_id, [resource_id])[resource_id]
    applied = [line.applied_at for line in journal if line.applied_at is not None]
    return DirectoryRow(
        resource_id=resource_id, resource_type="User" if is_user else "Group",
        name=str(data.get("userName" if is_user else "displayName") or resource_id),
        external_id=data.get("externalId"), emails=_emails(data),
        status="pending" if states.pending else "deleted", source="scim",
        last_write_at=journal[-1].acknowledged_at,
        last_applied_at=max(applied) if applied else None, memberships=(),
    )


def _history(session: Session, journal: list[history_view.JournalLine]) -> tuple[HistoryLine, ...]:
    seqs = [line.seq for line in journal]
    waits = history_view.waits_of(session, seqs)
    letters = {r.journal_seq: r for r in history_view.dead_letter_records(
        session, seqs=seqs, limit=len(seqs) or 1)}
    return tuple(_history_line(line, waits.get(line.seq), letters.get(line.seq))
                 for line in journal)


def _history_line(line: history_view.JournalLine, waits: list[str] | None,
                  letter: history_view.DeadLetterRecord | None) -> HistoryLine:
    return HistoryLine(
        seq=line.seq, request_id=line.request_id, summary=_summary(line.command),
        status=line.status, acknowledged_at=line.acknowledged_at, applied_at=line.applied_at,
        attempts=line.attempts, waited_for=tuple(waits or _waited_in(line.last_error)),
        last_error=line.last_error, dead_letter_id=letter.id if letter else None,
        dead_letter_reason=letter.reason if letter else None,
        dead_letter_settled=letter is not None and _settled(letter) is not None,
    )


def _waited_in(last_error: str | None) -> list[str]:
    """The members an entry last waited for, as its postponement recorded them."""
    if not last_error or not last_error.startswith(WAITING_PREFIX):
        return []
    return [part.strip() for part in last_error[len(WAITING_PREFIX):].split(",") if part.strip()]


def _summary(command: dict[str, Any] | None) -> str:
    if not command:
        return "(journal entry pruned)"
    try:
        return summarise(Command.from_json(command))
    except (KeyError, ValueError, TypeError):
        return f"{command.get('kind', 'unknown')} (unreadable)"


def _events(session: Session, tenant_id: str, resource_id: str) -> tuple[EventLine, ...]:
    events = history_view.events_of(session, tenant_id, resource_id, limit=EVENTS_LIMIT)
    cursors = history_view.endpoint_cursors(session, tenant_id) if events else []
    return tuple(EventLine(e.event_id, e.event_type, e.created_at,
                           _delivery(e.position, cursors)) for e in events)


def _delivery(position: int, cursors: list[int]) -> str:
    if not cursors:
        return "no endpoint"
    passed = sum(1 for cursor in cursors if cursor >= position)
    if passed == len(cursors):
        return f"delivered to {passed} endpoint{'s' if passed != 1 else ''}"
    return f"waiting ({passed} of {len(cursors)} endpoints passed it)"


def _logins(session: Session, tenant_id: str, row: DirectoryRow) -> tuple[LoginLine, ...]:
    if row.resource_type != "User":
        return ()
    return tuple(LoginLine(r.decided_at, r.issuer, r.subject, r.decision, r.reason, r.action)
                 for r in history_view.logins_of(session, tenant_id, row.resource_id,
                                             limit=LOGINS_LIMIT))


def _settled(record: history_view.DeadLetterRecord) -> str | None:
    if record.replayed_at is not None:
        return "replayed"
    return "discarded" if record.discarded_at is not None else None


def _dead_letter_lines(session: Session,
                       records: list[history_view.DeadLetterRecord]) -> list[DeadLetterLine]:
    names = history_view.resource_names(session, {(r.tenant_id, r.resource_id) for r in records})
    return [
        DeadLetterLine(
            id=r.id, journal_seq=r.journal_seq, tenant_id=r.tenant_id, tenant_name=r.tenant_name,
            resource_id=r.resource_id, resource_type=r.resource_type,
            resource_name=names.get((r.tenant_id, r.resource_id), r.resource_id),
            summary=_summary(r.command), reason=r.reason, created_at=r.created_at,
            settled=_settled(r), settled_at=r.replayed_at or r.discarded_at,
        )
        for r in records
    ]


def _outcome(status_code: int | None, error: str | None) -> str:
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if error:
        return error.splitlines()[0][:200]
    return "no answer" if status_code is None else f"refused (HTTP {status_code})"
