"""The worker's guarantees against real databases: `Drainer` called directly, never Celery.

Every test runs on SQLite and on PostgreSQL (see conftest.py), except those that need two
concurrent transactions, which only PostgreSQL's advisory locks make meaningful. Writes go
through the real write path (`WriteService`); where a test needs a state the API cannot
produce (a create that is acknowledged but never becomes due), it says so and sets it in SQL.

What is proven:
- order per resource, also across small batches and interleaved writes;
- idempotence: a second drain, a second drainer, two concurrent drainers apply nothing twice;
- group-before-user: a membership waits (postponed, with its reason), is woken by the user's
  arrival, and the group's later entries wait behind it;
- the retry budget ends in a dead letter, the group moves on, and a replay applies it;
- deprovisioning revokes sessions and writes its events (one `user.deprovisioned` or
  `user.deleted`, one `session.revoked` per session) in the apply transaction;
- a batch that swaps unique userNames converges;
- membership writes are set-based: the statement count does not grow with the group.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer, DrainReport, RetryPolicy
from scimflow.pipeline.store import claim, dead_letters, journal
from scimflow.pipeline.store.models import (
    DeadLetter,
    Group,
    JournalEntry,
    Membership,
    OutboxEvent,
    User,
    UserSession,
)
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import USER_SCHEMA, Services

# Drainer clocks start well after the write clock (conftest.EPOCH), so every write is "past".
DRAIN_START = datetime(2024, 6, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class ManualClock:
    """A clock that only moves when the test moves it."""

    now: datetime = DRAIN_START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class JournalRow:
    seq: int
    status: str
    attempts: int
    not_before: datetime | None
    last_error: str | None


# --- helpers ---------------------------------------------------------------------------------


def drainer(
    services: Services,
    *,
    clock: ManualClock | None = None,
    batch_size: int = 200,
    retry: RetryPolicy | None = None,
) -> Drainer:
    return Drainer(
        services.sessions,
        default_protocol(),
        batch_size=batch_size,
        retry=retry,
        clock=clock or ManualClock(),
    )


def patch_user(services: Services, tenant: TenantRef, user_id: str, **values: Any) -> None:
    operations = [{"op": "replace", "path": name, "value": v} for name, v in values.items()]
    services.writes.patch(
        tenant, "User", user_id, patch_body(*operations), if_match=None, request_id="test"
    )


def put_user(services: Services, tenant: TenantRef, user_id: str, user_name: str) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": user_name}
    services.writes.replace(tenant, "User", user_id, body, if_match=None, request_id="test")


def add_members(services: Services, tenant: TenantRef, group_id: str, members: list[str]) -> None:
    body = patch_body({"op": "add", "path": "members", "value": [{"value": m} for m in members]})
    services.writes.patch(tenant, "Group", group_id, body, if_match=None, request_id="test")


def rename_group(services: Services, tenant: TenantRef, group_id: str, name: str) -> None:
    body = patch_body({"op": "replace", "path": "displayName", "value": name})
    services.writes.patch(tenant, "Group", group_id, body, if_match=None, request_id="test")


def delete_user(services: Services, tenant: TenantRef, user_id: str) -> None:
    services.writes.delete(tenant, "User", user_id, if_match=None, request_id="test")


def journal_of(services: Services, resource_id: str) -> list[JournalRow]:
    with services.sessions.begin() as session:
        rows = session.execute(
            select(
                JournalEntry.seq,
                JournalEntry.status,
                JournalEntry.attempts,
                JournalEntry.not_before,
                JournalEntry.last_error,
            )
            .where(JournalEntry.resource_id == resource_id)
            .order_by(JournalEntry.seq)
        )
        return [JournalRow(*row) for row in rows]


def make_not_due(services: Services, resource_id: str, when: datetime | None) -> None:
    """Set `not_before` of a resource's pending entries (None: due now)."""
    with services.sessions.begin() as session:
        session.execute(
            update(JournalEntry)
            .where(JournalEntry.resource_id == resource_id, JournalEntry.status == "pending")
            .values(not_before=when)
        )


def park(services: Services, resource_id: str) -> None:
    """Hide a resource's pending entries from every drain (a status no drain looks at)."""
    with services.sessions.begin() as session:
        session.execute(
            update(JournalEntry)
            .where(JournalEntry.resource_id == resource_id, JournalEntry.status == "pending")
            .values(status="parked")
        )


def unpark(services: Services, resource_id: str) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(JournalEntry)
            .where(JournalEntry.resource_id == resource_id, JournalEntry.status == "parked")
            .values(status="pending")
        )


def user_row(services: Services, user_id: str) -> User | None:
    with services.sessions.begin() as session:
        return session.get(User, (tenant_of_user(services, user_id), user_id))


def tenant_of_user(services: Services, resource_id: str) -> str:
    with services.sessions.begin() as session:
        return str(
            session.execute(
                select(JournalEntry.tenant_id).where(JournalEntry.resource_id == resource_id)
            ).scalars().first()
        )


def users_by_id(services: Services, tenant: TenantRef) -> dict[str, User]:
    with services.sessions.begin() as session:
        rows = session.execute(select(User).where(User.tenant_id == tenant.id)).scalars()
        return {row.id: row for row in rows}


def members_of(services: Services, tenant: TenantRef, group_id: str) -> set[str]:
    with services.sessions.begin() as session:
        return set(
            session.execute(
                select(Membership.member_id).where(
                    Membership.tenant_id == tenant.id, Membership.group_id == group_id
                )
            ).scalars()
        )


def group_row(services: Services, tenant: TenantRef, group_id: str) -> Group | None:
    with services.sessions.begin() as session:
        return session.get(Group, (tenant.id, group_id))


def events_of(services: Services, resource_id: str) -> list[tuple[str, int]]:
    with services.sessions.begin() as session:
        rows = session.execute(
            select(OutboxEvent.event_type, OutboxEvent.journal_seq)
            .where(OutboxEvent.resource_id == resource_id)
            .order_by(OutboxEvent.id)
        )
        return [(row.event_type, row.journal_seq) for row in rows]


def count(services: Services, table: Any, *where: Any) -> int:
    with services.sessions.begin() as session:
        statement = select(func.count()).select_from(table)
        if where:
            statement = statement.where(*where)
        return int(session.execute(statement).scalar_one())


def backlog(services: Services) -> int:
    with services.sessions.begin() as session:
        return sum(journal.backlog_by_tenant(session).values())


def entries_per_resource(services: Services) -> Counter[str]:
    with services.sessions.begin() as session:
        return Counter(session.execute(select(JournalEntry.resource_id)).scalars())


def naive(moment: datetime) -> datetime:
    """An instant as naive UTC, so that expectations can be written without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


# --- order per resource ----------------------------------------------------------------------


def test_a_users_writes_accepted_before_any_drain_apply_in_order(services: Services) -> None:
    acme = services.tenant("acme")
    user_id = services.user(acme, "ada@example.com", displayName="v0")
    patch_user(services, acme, user_id, displayName="v1")
    patch_user(services, acme, user_id, displayName="v2", title="Engineer")
    patch_user(services, acme, user_id, active=False)
    seqs = [row.seq for row in journal_of(services, user_id)]
    assert len(seqs) == 4 and seqs == sorted(seqs)

    report = drainer(services).drain()

    assert report.applied == 4 and report.postponed == report.dead == 0
    user = user_row(services, user_id)
    assert user is not None
    assert user.data["displayName"] == "v2" and user.data["title"] == "Engineer"
    assert user.active is False and user.data["active"] is False
    assert user.version == 4
    assert user.journal_seq == seqs[-1]
    assert [row.status for row in journal_of(services, user_id)] == ["applied"] * 4
    kinds = [kind for kind, _ in events_of(services, user_id)]
    # The deactivation is one event, `user.deprovisioned`, not also a `user.updated`.
    assert kinds == ["user.created", "user.updated", "user.updated", "user.deprovisioned"]


def test_interleaved_writes_of_100_users_keep_each_users_order_across_batches_of_7(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    worker = drainer(services, batch_size=7)
    ids = [services.user(acme, f"user{i:03}@example.com", displayName="r0") for i in range(100)]
    # Rounds of writes interleaved with partial drains: some users are applied between their
    # writes, others collect several pending writes; every batch holds 7 resources at most.
    for round_ in range(1, 5):
        for index, user_id in enumerate(ids):
            if (index + round_) % 3:  # not every user is written every round
                patch_user(services, acme, user_id, displayName=f"r{round_}", nickName=f"n{index}")
        for _ in range(round_ * 3):
            report = worker.drain_once()
            assert report.resources <= 7 and report.dead == report.postponed == 0
    report = worker.drain()
    assert report.dead == report.postponed == 0
    assert backlog(services) == 0

    users = users_by_id(services, acme)
    assert len(users) == 100
    written = entries_per_resource(services)
    for index, user_id in enumerate(ids):
        rows = journal_of(services, user_id)
        last_round = max(r for r in range(5) if r == 0 or (index + r) % 3)
        user = users[user_id]
        assert user.data["displayName"] == f"r{last_round}", (index, user.data)
        assert user.version == written[user_id] == len(rows)
        assert user.journal_seq == rows[-1].seq
        # Applied in seq order: the outbox records increasing journal positions.
        positions = [seq for _, seq in events_of(services, user_id)]
        assert positions == sorted(positions)


def test_a_drain_stopped_by_its_batch_limit_says_more_is_waiting(services: Services) -> None:
    # A worker's task drains a few batches, then rings again only if this says so: left
    # unsaid, the rest would wait for the sweeper.
    acme = services.tenant("acme")
    for i in range(12):
        services.user(acme, f"user{i:02}@example.com")
    worker = drainer(services, batch_size=5)
    first = worker.drain(max_batches=2)
    assert (first.applied, first.more_waiting) == (10, True)
    rest = worker.drain(max_batches=5)
    assert (rest.applied, rest.more_waiting) == (2, False)


# --- idempotence -----------------------------------------------------------------------------


def test_draining_twice_or_with_a_second_drainer_applies_nothing_again(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    ids = [services.user(acme, f"u{i}@example.com") for i in range(10)]
    patch_user(services, acme, ids[0], displayName="Zero")
    group_id = services.group(acme, "Everyone", ids)
    first = drainer(services).drain()
    assert first.applied == 12
    events = count(services, OutboxEvent)
    before = {uid: (u.version, u.journal_seq) for uid, u in users_by_id(services, acme).items()}

    again = drainer(services).drain()
    other = Drainer(services.sessions, default_protocol()).drain()

    assert again.applied == other.applied == again.resources == other.resources == 0
    assert count(services, OutboxEvent) == events
    after = {uid: (u.version, u.journal_seq) for uid, u in users_by_id(services, acme).items()}
    assert after == before
    group = group_row(services, acme, group_id)
    assert group is not None and group.version == 1
    assert members_of(services, acme, group_id) == set(ids)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # advisory locks
@pytest.mark.timeout(120)
def test_two_concurrent_drainers_apply_every_entry_exactly_once(
    services: Services, db_engine: Engine
) -> None:
    acme = services.tenant("acme")
    ids = [services.user(acme, f"c{i:03}@example.com") for i in range(500)]
    for index, user_id in enumerate(ids):
        for n in range(index % 3):  # 1, 2 or 3 entries per user
            patch_user(services, acme, user_id, displayName=f"d{n}")
    expected = entries_per_resource(services)
    assert sum(expected.values()) == 500 + 499

    reports: dict[str, list[DrainReport]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(name: str) -> None:
        worker = Drainer(services.sessions, default_protocol(), batch_size=25)
        try:
            start.wait()
            deadline = time.monotonic() + 60
            while backlog(services) and time.monotonic() < deadline:
                reports[name].append(worker.drain_once())
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    assert backlog(services) == 0

    applied = sum(r.applied for rs in reports.values() for r in rs)
    assert applied == sum(expected.values())  # not one entry applied twice
    users = users_by_id(services, acme)
    assert len(users) == 500
    assert {uid: u.version for uid, u in users.items()} == dict(expected)
    # One event per applied entry: a duplicate apply would have written its events again.
    assert count(services, OutboxEvent) == sum(expected.values())
    assert count(services, JournalEntry, JournalEntry.status != "applied") == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # advisory locks
def test_concurrent_drainers_split_the_ready_resources_between_them(
    services: Services, db_engine: Engine
) -> None:
    """A second worker must get the *next* ready resources while the first holds its batch.

    `claim.ready_resources` promises that "concurrent workers split the ready resources
    between them"; that is what lets more workers drain one big tenant faster.
    """
    acme = services.tenant("acme")
    for i in range(20):
        services.user(acme, f"s{i:02}@example.com")
    with services.sessions.begin() as first:
        held = claim.ready_resources(first, now=DRAIN_START, limit=10)
        assert len(held) == 10
        # While the first worker's transaction holds its ten resources, a second one drains.
        report = drainer(services, batch_size=10).drain_once()
        assert report.resources == 10, (
            f"the second drainer claimed {report.resources} of the 10 other ready resources"
        )
        assert report.applied == 10
    assert {key[1] for key in held}.isdisjoint(set(users_by_id(services, acme)))


# --- group before user -----------------------------------------------------------------------


def test_a_membership_waits_for_its_user_and_is_woken_when_the_user_lands(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    clock = ManualClock()
    worker = drainer(services, clock=clock, retry=RetryPolicy(base_seconds=30, max_seconds=60))
    group_id = services.group(acme, "Engineering")
    worker.drain()
    user_id = services.user(acme, "late@example.com")
    add_members(services, acme, group_id, [user_id])
    rename_group(services, acme, group_id, "Engineering (all)")  # must wait behind the add
    # The user's create is acknowledged but not applied yet: keep it from being claimed.
    make_not_due(services, user_id, FAR_FUTURE)

    report = worker.drain()

    assert report.postponed == 1 and report.dead == 0 and report.applied == 0
    assert report.retry_in is not None and report.retry_in > 0
    blocked, later = journal_of(services, group_id)[1:]
    assert blocked.status == "pending" and blocked.attempts == 1
    assert blocked.not_before is not None and naive(blocked.not_before) > naive(DRAIN_START)
    assert blocked.last_error is not None and user_id in blocked.last_error
    assert later.status == "pending" and later.attempts == 0  # waits, untouched
    assert members_of(services, acme, group_id) == set()
    group = group_row(services, acme, group_id)
    assert group is not None and group.display_name == "Engineering" and group.version == 1

    # Nothing is due yet (backoff of >= 15 s): a drain a second later leaves the group alone.
    clock.advance(1)
    assert worker.drain().applied == 0
    assert journal_of(services, group_id)[1].attempts == 1

    # The user lands: its arrival wakes the group at once, long before its backoff ends.
    make_not_due(services, user_id, None)
    clock.advance(1)
    report = worker.drain()

    assert report.applied == 3 and report.postponed == report.dead == 0
    assert report.woken_tenants == {acme.id}
    assert members_of(services, acme, group_id) == {user_id}
    group = group_row(services, acme, group_id)
    assert group is not None
    assert group.display_name == "Engineering (all)" and group.version == 3
    assert [row.status for row in journal_of(services, group_id)] == ["applied"] * 3
    with services.sessions.begin() as session:
        membership = session.get(Membership, (acme.id, group_id, user_id))
        assert membership is not None and membership.member_type == "User"


def test_a_group_created_with_an_unapplied_member_waits_instead_of_dropping_it(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    clock = ManualClock()
    worker = drainer(services, clock=clock)
    ready_id = services.user(acme, "ready@example.com")
    late_id = services.user(acme, "late@example.com")
    group_id = services.group(acme, "Mixed", [ready_id, late_id])
    # A future `not_before` would not do here: the ready user's arrival wakes every postponed
    # entry of the tenant (`wake_blocked`). Parking the create hides it from every drain.
    park(services, late_id)

    report = worker.drain()

    # The ready user lands in the same batch, which wakes the group at once, so one drain may
    # try it twice; what matters is that it is kept, pending, with its reason.
    assert report.postponed >= 1 and report.applied == 1 and report.dead == 0
    assert group_row(services, acme, group_id) is None  # not created without its member
    row = journal_of(services, group_id)[0]
    assert row.status == "pending" and row.last_error is not None and late_id in row.last_error
    assert members_of(services, acme, group_id) == set()

    unpark(services, late_id)
    clock.advance(1)
    report = worker.drain()
    assert report.applied == 2 and report.dead == report.postponed == 0
    assert members_of(services, acme, group_id) == {ready_id, late_id}


# --- retry budget and dead letters -----------------------------------------------------------


def test_a_member_that_never_lands_exhausts_the_budget_then_dead_letters_and_replays(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    clock = ManualClock()
    worker = drainer(
        services, clock=clock, retry=RetryPolicy(base_seconds=1, max_seconds=10, limit=3)
    )
    group_id = services.group(acme, "Engineering")
    worker.drain()
    ghost_id = services.user(acme, "ghost@example.com")
    add_members(services, acme, group_id, [ghost_id])
    rename_group(services, acme, group_id, "Renamed")
    make_not_due(services, ghost_id, FAR_FUTURE)  # its create is never due

    outcomes: list[DrainReport] = []
    for _ in range(3):
        outcomes.append(worker.drain())
        clock.advance(60)  # past any backoff of this policy
    assert [(r.postponed, r.dead) for r in outcomes] == [(1, 0), (1, 0), (0, 1)]

    dead = journal_of(services, group_id)[1]
    assert dead.status == "dead" and dead.attempts == 3
    with services.sessions.begin() as session:
        letters = dead_letters.list_dead_letters(session, tenant_id=acme.id)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.journal_seq == dead.seq and letter.resource_id == group_id
    assert ghost_id in letter.reason
    assert count(services, DeadLetter) == 1

    # The group's later entry no longer waits behind the dead one.
    report = worker.drain()
    assert report.applied == 1
    group = group_row(services, acme, group_id)
    assert group is not None and group.display_name == "Renamed"
    assert members_of(services, acme, group_id) == set()

    # Replay: the command is appended again and applies once its member exists.
    with services.sessions.begin() as session:
        assert dead_letters.replay(session, letter.id, now=clock()) == acme.id
    make_not_due(services, ghost_id, None)
    clock.advance(1)
    report = worker.drain()
    assert report.dead == 0 and report.postponed == 0
    assert members_of(services, acme, group_id) == {ghost_id}
    rows = journal_of(services, group_id)
    assert [row.status for row in rows] == ["applied", "dead", "applied", "applied"]
    with services.sessions.begin() as session:
        assert dead_letters.list_dead_letters(session, tenant_id=acme.id) == []
        replayed = dead_letters.list_dead_letters(session, include_replayed=True)
    assert len(replayed) == 1 and replayed[0].replayed_at is not None


# --- deprovisioning --------------------------------------------------------------------------


def add_sessions(services: Services, tenant: TenantRef, user_id: str, n: int, **extra: Any) -> None:
    with services.sessions.begin() as session:
        session.execute(
            insert(UserSession),
            [
                {
                    "id": f"{user_id}-{i}-{extra.get('revoked_at') is not None}",
                    "tenant_id": tenant.id,
                    "user_id": user_id,
                    "created_at": DRAIN_START - timedelta(days=1),
                    "revoked_at": extra.get("revoked_at"),
                }
                for i in range(n)
            ],
        )


def sessions_of(services: Services, user_id: str) -> list[datetime | None]:
    with services.sessions.begin() as session:
        return list(
            session.execute(
                select(UserSession.revoked_at)
                .where(UserSession.user_id == user_id)
                .order_by(UserSession.id)
            ).scalars()
        )


def test_deactivation_revokes_live_sessions_and_emits_deprovisioned_in_the_apply(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    clock = ManualClock()
    worker = drainer(services, clock=clock)
    leaver = services.user(acme, "leaver@example.com")
    stayer = services.user(acme, "stayer@example.com")
    worker.drain()
    earlier = DRAIN_START - timedelta(hours=1)
    add_sessions(services, acme, leaver, 2)
    add_sessions(services, acme, leaver, 1, revoked_at=earlier)
    add_sessions(services, acme, stayer, 2)

    patch_user(services, acme, leaver, active=False)
    clock.advance(5)
    report = worker.drain()

    assert report.deprovisioned == 1 and report.applied == 1
    applied_at = naive(clock())
    revoked = sorted(naive(t) for t in sessions_of(services, leaver) if t is not None)
    # The two live sessions are revoked at the apply's own instant; the old one keeps its own.
    assert revoked == [naive(earlier), applied_at, applied_at]
    assert sessions_of(services, stayer) == [None, None]
    user = user_row(services, leaver)
    assert user is not None and user.active is False
    assert naive(user.updated_at) == applied_at
    # Written by the applying transaction: the deprovisioning, then one event per session the
    # apply revoked (the session revoked earlier says nothing).
    assert [kind for kind, _ in events_of(services, leaver)] == [
        "user.created", "user.deprovisioned", "session.revoked", "session.revoked",
    ]
    with services.sessions.begin() as session:
        documents = {
            row.event_type: row.payload for row in session.execute(
                select(OutboxEvent.event_type, OutboxEvent.payload)
                .where(OutboxEvent.resource_id == leaver)
            )
        }
    deprovisioned = documents["user.deprovisioned"]
    assert deprovisioned["changed_attributes"] == ["active"]
    assert deprovisioned["data"]["active"] is False
    assert deprovisioned["resource"]["version"] == 2
    assert documents["session.revoked"]["session"]["reason"] == "deprovisioned"


def test_delete_revokes_sessions_and_removes_the_user_from_every_group(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    worker = drainer(services)
    leaver = services.user(acme, "leaver@example.com")
    stayer = services.user(acme, "stayer@example.com")
    first = services.group(acme, "First", [leaver, stayer])
    second = services.group(acme, "Second", [leaver])
    worker.drain()
    add_sessions(services, acme, leaver, 3)

    delete_user(services, acme, leaver)
    report = worker.drain()

    assert report.deprovisioned == 1
    assert user_row(services, leaver) is None
    assert members_of(services, acme, first) == {stayer}
    assert members_of(services, acme, second) == set()
    assert count(services, Membership, Membership.member_id == leaver) == 0
    assert all(t is not None for t in sessions_of(services, leaver))
    # A deletion is `user.deleted` alone (no `user.deprovisioned` too), then its sessions.
    assert [kind for kind, _ in events_of(services, leaver)][1:] == [
        "user.deleted", "session.revoked", "session.revoked", "session.revoked",
    ]
    # Each group it was in is told it lost a member; the group that kept one is still there.
    assert [kind for kind, _ in events_of(services, first)][-1] == "group.member_removed"
    assert [kind for kind, _ in events_of(services, second)][-1] == "group.member_removed"


def test_a_delete_that_overtakes_an_earlier_membership_add_leaves_no_membership(
    services: Services,
) -> None:
    """Group PATCH add(u) accepted, then DELETE u accepted: u must end in no group.

    The API accepts the add (u exists then) and the DELETE. The DELETE is deprovisioning, so
    it is claimed first, in a batch of its own; the add, applied after it, must neither leave a
    membership naming a user that no longer exists nor wait for that user (no postponement,
    no dead letter).
    """
    acme = services.tenant("acme")
    worker = drainer(services)
    leaver = services.user(acme, "leaver@example.com")
    group_id = services.group(acme, "Team")
    worker.drain()

    add_members(services, acme, group_id, [leaver])
    delete_user(services, acme, leaver)
    report = worker.drain()

    assert report.dead == report.postponed == 0
    assert user_row(services, leaver) is None
    assert members_of(services, acme, group_id) == set(), "membership of a deleted user"


# --- unique keys -----------------------------------------------------------------------------


def test_a_batch_that_swaps_two_user_names_converges(services: Services) -> None:
    acme = services.tenant("acme")
    clock = ManualClock()
    worker = drainer(services, clock=clock, retry=RetryPolicy(base_seconds=1, max_seconds=5))
    ann = services.user(acme, "ann@example.com")
    bob = services.user(acme, "bob@example.com")
    worker.drain()
    # The swap as the API accepts it (its own unique index allows each step in this order).
    put_user(services, acme, ann, "tmp@example.com")
    put_user(services, acme, bob, "ann@example.com")
    put_user(services, acme, ann, "bob@example.com")

    reports = []
    for _ in range(20):  # ample for any retry
        reports.append(worker.drain())
        if backlog(services) == 0:
            break
        clock.advance(10)

    assert sum(r.dead for r in reports) == 0, [journal_of(services, i) for i in (ann, bob)]
    assert backlog(services) == 0
    users = users_by_id(services, acme)
    assert users[ann].user_name == "bob@example.com"
    assert users[bob].user_name == "ann@example.com"
    assert users[ann].version == 3 and users[bob].version == 2
    assert count(services, DeadLetter) == 0


def test_a_name_freed_and_taken_in_one_batch_applies_without_a_retry(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    worker = drainer(services)
    ann = services.user(acme, "ann@example.com")
    worker.drain()
    put_user(services, acme, ann, "ann.old@example.com")
    newcomer = services.user(acme, "ann@example.com")

    report = worker.drain()

    assert report.applied == 2 and report.postponed == report.dead == 0
    users = users_by_id(services, acme)
    assert users[ann].user_name == "ann.old@example.com"
    assert users[newcomer].user_name == "ann@example.com"


# --- set-based writes ------------------------------------------------------------------------


def statements_to_add_one_member(
    services: Services, statements: list[str], group_size: int
) -> list[str]:
    tenant = services.tenant(f"size-{group_size}")
    ids = [services.user(tenant, f"m{i:05}@example.com") for i in range(group_size + 1)]
    group_id = services.group(tenant, "Big", ids[:group_size])
    drainer(services).drain()
    assert len(members_of(services, tenant, group_id)) == group_size

    statements.clear()
    add_members(services, tenant, group_id, [ids[-1]])
    report = drainer(services).drain()
    sent = list(statements)

    assert report.applied == 1
    assert len(members_of(services, tenant, group_id)) == group_size + 1
    return sent


@pytest.mark.timeout(300)
def test_adding_one_member_costs_the_same_statements_for_20_or_2000_members(
    services: Services, statements: list[str]
) -> None:
    small = statements_to_add_one_member(services, statements, 20)
    big = statements_to_add_one_member(services, statements, 2000)

    assert len(big) == len(small), "\n".join(big)
    assert len(big) <= 20, "\n".join(big)
    # And no statement selects the group's members.
    assert not [s for s in big if "FROM memberships" in s and s.lstrip().startswith("SELECT")]
