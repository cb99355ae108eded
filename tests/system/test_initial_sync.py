"""An IdP's initial sync of 2,000 users and 50 groups, over HTTP, converges exactly.

The simulators (tests/system/idp.py) send what Okta and Entra send, 16 requests at a time,
against the API under gunicorn; real Celery workers apply the journal to PostgreSQL. While the
sync runs, 100 users get a profile update and, right after it, a deactivation. Once the
journal is drained, the directory in PostgreSQL must hold exactly what the IdP last sent.
A smaller sync against a low tenant backlog limit does the same through 429 + Retry-After.

Each test prints its figures (run with `-s`): requests/s, statuses, Retry-After waits, peak
backlog, time to drain after the last request, and the apply lag of the journal entries.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scimflow.pipeline.passwords.crypto import verify_password
from tests.support.services import require_postgres, require_redis
from tests.system.idp import (
    Directory,
    EntraSimulator,
    IdpSimulator,
    OktaSimulator,
    PlannedUser,
    plan_directory,
)
from tests.system.stack import Stack, running_stack

SPOT_CHECKED = 200
CONVERGE_TIMEOUT = 300
# Writes get 429 + Retry-After once this many changes of the tenant wait to be applied.
THROTTLED_BACKLOG = 10


@dataclass(frozen=True)
class SyncPlan:
    """What the IdP provisions, and which users churn while it does."""

    directory: Directory
    churn: frozenset[int]  # profile update then, immediately after, deactivation
    with_sessions: frozenset[int]  # churned users with sessions that must be revoked
    untouched_with_sessions: tuple[int, ...]  # active users whose sessions must survive
    resync: frozenset[int]  # group members updated once more after the groups were pushed

    def churned(self) -> list[PlannedUser]:
        return [user for user in self.directory.users if user.index in self.churn]


def sync_plan(domain: str, *, users: int, groups: int, members_per_group: int) -> SyncPlan:
    directory = plan_directory(users=users, groups=groups, members_per_group=members_per_group,
                               domain=domain)
    churn = frozenset(range(7, users, 20))  # one user in 20: 100 of 2,000
    return SyncPlan(
        directory=directory,
        churn=churn,
        with_sessions=frozenset(sorted(churn)[:10]),
        untouched_with_sessions=tuple(i for i in range(users) if i not in churn)[:5],
        resync=frozenset(group.members[0] for group in directory.groups) - churn,
    )


@pytest.mark.timeout(600)
def test_okta_initial_sync_converges_exactly(stack: Stack) -> None:
    plan = sync_plan("okta.example", users=2000, groups=50, members_per_group=20)
    sync_and_verify(stack, OktaSimulator, plan)


@pytest.mark.timeout(600)
def test_entra_initial_sync_converges_exactly(stack: Stack) -> None:
    plan = sync_plan("entra.example", users=2000, groups=50, members_per_group=20)
    sync_and_verify(stack, EntraSimulator, plan)


@pytest.fixture
def throttled_stack(tmp_path: Path) -> Iterator[Stack]:
    """The `stack`, with a tenant backlog limit an initial sync runs into."""
    require_postgres()
    require_redis()
    env = {"SCIMFLOW_TENANT_BACKLOG_LIMIT": str(THROTTLED_BACKLOG)}
    with running_stack(tmp_path, extra_env=env) as running:
        yield running


@pytest.mark.timeout(600)
def test_initial_sync_throttled_by_admission_control_converges_exactly(
    throttled_stack: Stack,
) -> None:
    """Writes refused with 429 and sent again after Retry-After are neither lost nor doubled."""
    plan = sync_plan("throttled.example", users=400, groups=10, members_per_group=20)
    idp = sync_and_verify(throttled_stack, OktaSimulator, plan)
    assert idp.traffic.honoured[429] > 0, "the backlog limit was never reached"
    assert idp.traffic.throttled_reads == 0, "reads must never be throttled"


def sync_and_verify(stack: Stack, simulator: type[IdpSimulator], plan: SyncPlan) -> IdpSimulator:
    """Run the IdP's initial sync with churn, wait for the workers, check PostgreSQL."""
    tenant = stack.create_tenant(simulator.name)
    tenant_id = tenant["tenant_id"]
    users = plan.directory.users
    sessions = Sessions(stack, tenant_id)

    def open_sessions(user: PlannedUser, user_id: str) -> None:
        if user.index in plan.with_sessions:
            sessions.open(user_id, count=2)

    with stack.client(tenant["token"], timeout=60) as http, BacklogSampler(stack) as backlog:
        idp = simulator(http)
        for index in plan.untouched_with_sessions:  # sessions of ids that no user will have
            sessions.open(f"unprovisioned-{index}", count=1)
        started = time.monotonic()
        idp.initial_sync(plan.directory, churn=plan.churn, before_churn=open_sessions,
                         resync=plan.resync)
        sent = time.monotonic()
        for index in plan.untouched_with_sessions:
            if (user_id := idp.user_ids.get(users[index].user_name)) is not None:
                sessions.open(user_id, count=1)  # (a user that failed is reported below)
        stack.wait_until_applied(timeout=CONVERGE_TIMEOUT)
        converged = time.monotonic()
    report_figures(stack, tenant_id, idp, sync_seconds=sent - started,
                   drain_seconds=converged - sent, peak_backlog=backlog.peak)

    assert_clean_traffic(idp)
    assert_users_as_sent(stack, tenant_id, idp, plan)
    assert_groups_and_memberships(stack, tenant_id, idp, plan.directory)
    assert_journal_fully_applied(stack, tenant_id, expected_entries=idp.traffic.writes)
    assert_deprovisioning_effects(stack, tenant_id, idp, plan, sessions)
    return idp


# --- application sessions, written straight to the database ---------------------------------


@dataclass
class Sessions:
    """`user_sessions` rows opened as the application would, to see deprovisioning revoke them."""

    stack: Stack
    tenant_id: str
    by_user: dict[str, list[str]] = field(default_factory=dict)

    def open(self, user_id: str, *, count: int) -> None:
        ids = [f"session-{uuid.uuid4().hex}" for _ in range(count)]
        execute(
            self.stack,
            "INSERT INTO user_sessions (id, tenant_id, user_id, created_at)"
            " VALUES (:id, :tenant_id, :user_id, now())",
            [{"id": i, "tenant_id": self.tenant_id, "user_id": user_id} for i in ids],
        )
        self.by_user.setdefault(user_id, []).extend(ids)


def execute(stack: Stack, statement: str, rows: list[dict[str, Any]]) -> None:
    """Run a write in its own committed transaction (`stack.sql` only reads)."""
    engine = create_engine(stack.database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement), rows)
    finally:
        engine.dispose()


# --- figures --------------------------------------------------------------------------------


class BacklogSampler:
    """Samples the journal's pending count while the sync runs, for the peak backlog."""

    def __init__(self, stack: Stack, interval: float = 0.5) -> None:
        self._engine = create_engine(stack.database_url, poolclass=NullPool)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak = 0

    def __enter__(self) -> BacklogSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            with self._engine.connect() as connection:
                pending = connection.execute(
                    text("SELECT count(*) FROM journal WHERE status = 'pending'")
                ).scalar_one()
            self.peak = max(self.peak, int(pending))


def report_figures(
    stack: Stack,
    tenant_id: str,
    idp: IdpSimulator,
    *,
    sync_seconds: float,
    drain_seconds: float,
    peak_backlog: int,
) -> None:
    traffic = idp.traffic
    lag = stack.sql(
        "SELECT extract(epoch FROM max(applied_at - created_at)),"
        " extract(epoch FROM avg(applied_at - created_at)), count(*),"
        " count(*) FILTER (WHERE attempts > 0), coalesce(max(attempts), 0)"
        " FROM journal WHERE tenant_id = :t",
        t=tenant_id,
    )[0]
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in idp.timings.phases.items())
    print(
        f"\n[{idp.name}] {traffic.requests} requests ({traffic.writes} writes) in "
        f"{sync_seconds:.1f}s = {traffic.requests / sync_seconds:.0f} req/s ({phases}); "
        f"statuses {dict(traffic.statuses)}; Retry-After honoured {dict(traffic.honoured)} "
        f"(waited {traffic.waited_seconds:.0f}s in all); peak backlog {peak_backlog}; "
        f"drained {drain_seconds:.1f}s after the last request; journal {lag[2]} entries, "
        f"apply lag max {float(lag[0] or 0):.1f}s avg {float(lag[1] or 0):.2f}s; "
        f"{lag[3]} entries postponed (waiting for a member), at most {lag[4]} times"
    )


# --- shared assertions ----------------------------------------------------------------------


def assert_clean_traffic(idp: IdpSimulator) -> None:
    """Every request succeeded (after Retry-After waits), and every look-up saw its write."""
    traffic = idp.traffic
    assert traffic.server_errors == 0, f"5xx responses: {dict(traffic.statuses)}"
    assert not traffic.failures, _listing("failed requests", traffic.failures)
    assert not traffic.errors, _listing("failed steps", traffic.errors)
    assert not traffic.stale_reads, _listing("look-ups that missed a POSTed user",
                                             traffic.stale_reads)
    assert idp.matched == [], _listing("users found before they were created", idp.matched)


def assert_users_as_sent(stack: Stack, tenant_id: str, idp: IdpSimulator, plan: SyncPlan) -> None:
    """No duplicates; `active` right for every user; every field right for a sample."""
    users = plan.directory.users
    total, distinct = stack.sql(
        "SELECT count(*), count(DISTINCT lower(user_name)) FROM users WHERE tenant_id = :t",
        t=tenant_id,
    )[0]
    assert (total, distinct) == (len(users), len(users))
    rows = {
        row.user_name: row
        for row in stack.sql(
            "SELECT id, user_name, active, data FROM users WHERE tenant_id = :t", t=tenant_id
        )
    }
    assert {name: row.id for name, row in rows.items()} == idp.user_ids

    wrong_active = [
        f"{user.user_name}: active={row.active}, data.active={row.data.get('active')}"
        for user in users
        if (row := rows[user.user_name]).active is not (user.index not in plan.churn)
        or row.data.get("active") is not (user.index not in plan.churn)
    ]
    assert not wrong_active, _listing("users with the wrong active state", wrong_active)

    sample = random.Random(7).sample(users, min(SPOT_CHECKED, len(users)))
    mismatches = [
        problem
        for user in {*sample, *plan.churned(), *(users[i] for i in plan.resync)}
        if (problem := stored_mismatch(rows[user.user_name].data, idp.sent[user.user_name]))
    ]
    assert not mismatches, _listing("users whose data is not what the IdP sent", mismatches)
    updated = [*plan.churned(), *(users[i] for i in plan.resync)]
    lost_updates = [
        user.user_name
        for user in updated
        if rows[user.user_name].data["name"]["familyName"] != user.updated_family_name
    ]
    assert not lost_updates, _listing("profile updates lost", lost_updates)


def stored_mismatch(stored: dict[str, Any], sent: dict[str, Any]) -> str | None:
    """Why `stored` is not `sent` (a cleartext password must be stored as its hash)."""
    stored, sent = dict(stored), dict(sent)
    password = sent.pop("password", None)
    stored_hash = stored.pop("password", None)
    if password is not None and not (
        isinstance(stored_hash, str) and verify_password(password, stored_hash)
    ):
        return f"{sent.get('userName')}: password stored as {stored_hash!r}"
    if stored != sent:
        return f"{sent.get('userName')}: stored {stored!r} != sent {sent!r}"
    return None


def assert_groups_and_memberships(
    stack: Stack, tenant_id: str, idp: IdpSimulator, directory: Directory
) -> None:
    """Exactly the groups pushed, and exactly the intended members: none missing, none extra."""
    groups = {
        row.display_name: row.id
        for row in stack.sql("SELECT id, display_name FROM groups WHERE tenant_id = :t",
                             t=tenant_id)
    }
    assert len(groups) == len(directory.groups)
    assert groups == idp.group_ids
    pairs = stack.sql(
        "SELECT g.display_name, u.user_name FROM memberships m"
        " LEFT JOIN groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id"
        " LEFT JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.member_id"
        " WHERE m.tenant_id = :t",
        t=tenant_id,
    )
    found = {(row.display_name, row.user_name) for row in pairs}
    intended = directory.memberships()
    assert not intended - found, _listing("missing memberships", sorted(intended - found))
    assert not found - intended, _listing("extra memberships", sorted(found - intended, key=str))
    assert len(pairs) == len(intended)


def assert_journal_fully_applied(stack: Stack, tenant_id: str, *, expected_entries: int) -> None:
    """One journal entry per acknowledged write, every one applied; no dead letters."""
    statuses = dict(
        stack.sql("SELECT status, count(*) FROM journal WHERE tenant_id = :t GROUP BY status",
                  t=tenant_id)
    )
    assert statuses == {"applied": expected_entries}, stack.sql(
        "SELECT seq, kind, status, attempts, last_error FROM journal"
        " WHERE tenant_id = :t AND status <> 'applied' ORDER BY seq LIMIT 10",
        t=tenant_id,
    )
    dead = stack.sql("SELECT journal_seq, reason FROM dead_letters WHERE tenant_id = :t",
                     t=tenant_id)
    assert dead == [], _listing("dead letters", dead)


def assert_deprovisioning_effects(
    stack: Stack, tenant_id: str, idp: IdpSimulator, plan: SyncPlan, sessions: Sessions
) -> None:
    """One `user.deprovisioned` event per deactivated user; their sessions, only, revoked, and
    one `session.revoked` event per session revoked."""
    deactivated = {idp.user_ids[user.user_name] for user in plan.churned()}
    events = dict(
        stack.sql(
            "SELECT resource_id, count(*) FROM outbox WHERE tenant_id = :t"
            " AND event_type = 'user.deprovisioned' GROUP BY resource_id",
            t=tenant_id,
        )
    )
    assert events == dict.fromkeys(deactivated, 1)

    revoked = {
        row.id: row.revoked
        for row in stack.sql(
            "SELECT id, revoked_at IS NOT NULL AS revoked FROM user_sessions"
            " WHERE tenant_id = :t",
            t=tenant_id,
        )
    }
    expected = {
        session: user_id in deactivated
        for user_id, ids in sessions.by_user.items()
        for session in ids
    }
    assert len(expected) == 2 * len(plan.with_sessions) + 2 * len(plan.untouched_with_sessions)
    assert revoked == expected

    told = stack.sql(
        "SELECT payload->'session'->>'id' AS session_id, resource_id FROM outbox"
        " WHERE tenant_id = :t AND event_type = 'session.revoked'",
        t=tenant_id,
    )
    assert sorted(tuple(row) for row in told) == sorted(
        (session, user_id)
        for user_id, ids in sessions.by_user.items() if user_id in deactivated
        for session in ids
    )


def _listing(title: str, items: Collection[Any], limit: int = 10) -> str:
    shown = "\n  ".join(str(item) for item in list(items)[:limit])
    return f"{len(items)} {title}:\n  {shown}"
