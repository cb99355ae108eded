"""Retention against real databases: what goes, what never goes, batches, dry runs.

Every test runs on SQLite and on PostgreSQL (see conftest.py), except the one about row locks,
which only PostgreSQL has. Writes go through the real write path and the real `Drainer`, whose
clock is the wall clock: an entry applied now is "older than 7 days" for a prune run whose
`now` is 8 days ahead. Where a test needs a state the pipeline cannot produce on demand (an
outbox event written 10 days ago, a webhook endpoint that has delivered up to a position, a
wait naming an applied entry), it sets it in SQL.

What is proven:
- applied entries older than the period go, newer ones stay; pending and dead entries never go;
- an entry that a wait or a dead letter names is kept; an outbox event does not keep its entry;
- the newest row of each table is kept, so SQLite never hands a `seq` or an id out twice;
- outbox events go by age, except those an enabled webhook endpoint of their tenant has not
  passed yet (a disabled endpoint, or another tenant's, holds nothing); dead letters go,
  replayed or not;
- 0 days keeps a table forever; batches are bounded, paced and a run is capped;
- a dry run deletes nothing and counts exactly what the run then deletes;
- nothing the pipeline does later needs a pruned entry (updates, deletes, a retried POST,
  a dead letter's replay);
- on PostgreSQL pruning skips rows another transaction holds instead of waiting for them.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.store import dead_letters, retention
from scimflow.pipeline.store.models import (
    DeadLetter,
    JournalEntry,
    JournalWait,
    OutboxEvent,
    User,
    WebhookEndpoint,
)
from scimflow.pipeline.store.retention import PruneReport, RetentionPolicy
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import USER_SCHEMA, Services

POLICY = RetentionPolicy()  # 7 days of journal and outbox, 30 of dead letters
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def prune(services: Services, *, days_ahead: float, policy: RetentionPolicy = POLICY,
          **options: Any) -> PruneReport:
    """A prune run whose `now` is `days_ahead` days from the wall clock."""
    now = utc_now() + timedelta(days=days_ahead)
    options.setdefault("sleep", lambda _seconds: None)  # the pauses, tested on their own
    return retention.prune(services.sessions, policy, now=now, **options)


def applied_users(services: Services, tenant: TenantRef, count: int) -> list[str]:
    """`count` users created and applied (one event each); their ids, in order."""
    ids = [services.user(tenant, f"user{index}@example.com") for index in range(count)]
    services.drain()
    return ids


def position_of(services: Services, resource_id: str) -> int:
    """The position of a resource's one event (its `user.created`)."""
    with services.sessions.begin() as session:
        return int(session.execute(
            select(OutboxEvent.id).where(OutboxEvent.resource_id == resource_id)
        ).scalar_one())


def add_endpoint(services: Services, tenant: TenantRef, *, cursor: int) -> str:
    """An enabled webhook endpoint of `tenant` that has delivered every event up to `cursor`."""
    endpoint_id = str(uuid.uuid4())
    with services.sessions.begin() as session:
        session.execute(insert(WebhookEndpoint).values(
            id=endpoint_id, tenant_id=tenant.id, url="https://app.example.com/hooks",
            event_types=["*"], format="json", secrets=[], created_at=utc_now(), cursor=cursor,
        ))
    return endpoint_id


def move_cursor(services: Services, endpoint_id: str, cursor: int) -> None:
    with services.sessions.begin() as session:
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                        .values(cursor=cursor))


def seq_of(services: Services, resource_id: str) -> int:
    with services.sessions.begin() as session:
        return int(session.scalar(select(func.min(JournalEntry.seq))
                                  .where(JournalEntry.resource_id == resource_id)) or 0)


def journal_seqs(services: Services) -> list[int]:
    with services.sessions.begin() as session:
        return list(session.scalars(select(JournalEntry.seq).order_by(JournalEntry.seq)))


def journal_statuses(services: Services) -> list[str]:
    with services.sessions.begin() as session:
        return list(session.scalars(select(JournalEntry.status).order_by(JournalEntry.seq)))


def ids_of(services: Services, model: type[OutboxEvent] | type[DeadLetter]) -> list[int]:
    with services.sessions.begin() as session:
        return list(session.scalars(select(model.id).order_by(model.id)))


def counts(services: Services) -> tuple[int, int, int]:
    with services.sessions.begin() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (JournalEntry, OutboxEvent, DeadLetter)
        )


def count_of(services: Services, model: type[OutboxEvent], *where: Any) -> int:
    with services.sessions.begin() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def add_dead_letter(services: Services, *, days_old: float, replayed: bool = False) -> None:
    recorded = utc_now() - timedelta(days=days_old)
    with services.sessions.begin() as session:
        session.execute(insert(DeadLetter).values(
            journal_seq=0, tenant_id="t", resource_id="r", reason="test", created_at=recorded,
            replayed_at=recorded if replayed else None,
        ))


# --- the journal -----------------------------------------------------------------------------


def test_applied_entries_older_than_the_period_go_and_newer_ones_stay(services: Services) -> None:
    applied_users(services, services.tenant("acme"), 4)
    seqs = journal_seqs(services)

    assert prune(services, days_ahead=6).journal == 0
    assert journal_seqs(services) == seqs

    assert prune(services, days_ahead=8) == PruneReport(journal=3, outbox=3)
    assert journal_seqs(services) == seqs[-1:]  # the newest stays (see the next tests)


def test_pending_and_dead_entries_are_never_pruned(services: Services) -> None:
    acme = services.tenant("acme")
    applied = applied_users(services, acme, 2)
    services.user(acme, "pending1@example.com")
    services.user(acme, "pending2@example.com")
    # Only `applied` may go: an entry whose status is not, applied_at or not, stays.
    marked = seq_of(services, applied[1])
    with services.sessions.begin() as session:
        session.execute(update(JournalEntry).values(status="dead")
                        .where(JournalEntry.seq == marked))

    assert prune(services, days_ahead=10_000).journal == 1
    assert journal_statuses(services) == ["dead", "pending", "pending"]


def test_entries_still_named_by_a_wait_or_a_dead_letter_stay_an_undelivered_event_keeps_none(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    users = applied_users(services, acme, 5)
    waited, lettered, evented, free, newest = (seq_of(services, user_id) for user_id in users)
    # An endpoint that has not delivered the third user's event yet holds it (and the later
    # ones), but not the journal entry it came from.
    add_endpoint(services, acme, cursor=position_of(services, users[2]) - 1)
    with services.sessions.begin() as session:
        session.execute(insert(JournalWait).values(seq=waited, tenant_id=acme.id,
                                                   resource_id="member"))
        session.execute(insert(DeadLetter).values(
            journal_seq=lettered, tenant_id=acme.id, resource_id="r", reason="test",
            created_at=utc_now()))

    assert prune(services, days_ahead=8) == PruneReport(journal=2, outbox=2)
    assert journal_seqs(services) == [waited, lettered, newest]
    assert free not in journal_seqs(services) and evented not in journal_seqs(services)
    assert count_of(services, OutboxEvent, OutboxEvent.journal_seq == evented) == 1


def test_the_newest_row_of_each_table_stays_so_no_key_is_handed_out_twice(
    services: Services,
) -> None:
    """SQLite gives a new row the largest key plus one: deleting the largest would reuse it."""
    acme = services.tenant("acme")
    applied_users(services, acme, 3)
    newest_seq, newest_event = journal_seqs(services)[-1], ids_of(services, OutboxEvent)[-1]

    assert prune(services, days_ahead=8) == PruneReport(journal=2, outbox=2)
    assert journal_seqs(services) == [newest_seq]
    assert ids_of(services, OutboxEvent) == [newest_event]

    later = services.user(acme, "later@example.com")
    services.drain()
    assert seq_of(services, later) > newest_seq
    assert ids_of(services, OutboxEvent)[-1] > newest_event
    with services.sessions.begin() as session:
        assert (session.scalar(select(User.journal_seq).where(User.id == later)) or 0) > newest_seq


# --- the outbox and dead letters -------------------------------------------------------------


def test_only_events_written_before_the_period_are_pruned(services: Services) -> None:
    acme = services.tenant("acme")
    ids = applied_users(services, acme, 4)
    now = utc_now()
    written = {ids[0]: now - timedelta(days=10), ids[1]: now - timedelta(days=1),
               ids[2]: now - timedelta(days=8), ids[3]: now - timedelta(days=10)}
    with services.sessions.begin() as session:
        for resource_id, at in written.items():
            session.execute(update(OutboxEvent).where(OutboxEvent.resource_id == resource_id)
                            .values(created_at=at))
    events = ids_of(services, OutboxEvent)

    # Ten and eight days old go; yesterday's and the newest (however old) stay.
    assert prune(services, days_ahead=0).outbox == 2
    assert ids_of(services, OutboxEvent) == [events[1], events[3]]


def test_an_event_an_enabled_endpoint_of_its_tenant_has_not_passed_is_kept(
    services: Services,
) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    ann, bob, cid = applied_users(services, acme, 3)
    gus, newest = applied_users(services, globex, 2)
    hook = add_endpoint(services, acme, cursor=position_of(services, ann))
    # globex's endpoint has passed everything: it holds none of globex's events, and an
    # endpoint never holds another tenant's (acme's are past its cursor, but not its own).
    add_endpoint(services, globex, cursor=position_of(services, newest))

    assert prune(services, days_ahead=8, dry_run=True).outbox == 2
    assert prune(services, days_ahead=8).outbox == 2  # ann's (passed) and gus's
    assert ids_of(services, OutboxEvent) == [
        position_of(services, bob), position_of(services, cid), position_of(services, newest)
    ]
    assert count_of(services, OutboxEvent, OutboxEvent.resource_id == gus) == 0

    # Once the endpoint has delivered them, they go too.
    move_cursor(services, hook, position_of(services, cid))
    assert prune(services, days_ahead=8).outbox == 2
    assert ids_of(services, OutboxEvent) == [position_of(services, newest)]


def test_a_disabled_endpoint_holds_no_event(services: Services) -> None:
    acme = services.tenant("acme")
    applied_users(services, acme, 3)
    hook = add_endpoint(services, acme, cursor=0)
    assert prune(services, days_ahead=8).outbox == 0  # enabled, it holds all three

    with services.sessions.begin() as session:
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == hook)
                        .values(disabled_at=utc_now(), disabled_reason="failing"))

    assert prune(services, days_ahead=8).outbox == 2  # all but the newest
    assert len(ids_of(services, OutboxEvent)) == 1


def test_dead_letters_older_than_the_period_go_replayed_or_not(services: Services) -> None:
    add_dead_letter(services, days_old=40)
    add_dead_letter(services, days_old=40, replayed=True)
    add_dead_letter(services, days_old=10)
    add_dead_letter(services, days_old=40)  # the newest: kept
    letters = ids_of(services, DeadLetter)

    assert prune(services, days_ahead=0) == PruneReport(dead_letters=2)
    assert ids_of(services, DeadLetter) == letters[2:]


def test_zero_days_keeps_a_table_forever(services: Services) -> None:
    applied_users(services, services.tenant("acme"), 3)
    add_dead_letter(services, days_old=400)
    add_dead_letter(services, days_old=400)
    before = counts(services)
    forever = RetentionPolicy(journal_days=0, outbox_days=0, dead_letter_days=0)

    assert prune(services, days_ahead=10_000, policy=forever) == PruneReport()
    assert counts(services) == before

    outbox_forever = RetentionPolicy(outbox_days=0)
    assert prune(services, days_ahead=10_000, policy=outbox_forever) == PruneReport(
        journal=2, dead_letters=1)
    assert counts(services) == (1, 3, 1)


# --- batches, the per-run cap, dry runs ------------------------------------------------------


def test_batches_of_two_delete_five_rows_in_three_statements(
    services: Services, statements: list[str]
) -> None:
    # One drain stamps all six entries with the same applied_at: batches must get past ties.
    applied_users(services, services.tenant("acme"), 6)
    statements.clear()

    report = prune(services, days_ahead=8, policy=RetentionPolicy(batch_size=2, outbox_days=0))

    assert report.journal == 5
    assert len([s for s in statements if s.startswith("DELETE FROM journal")]) == 3
    assert len(journal_seqs(services)) == 1


def test_a_run_pauses_between_its_batches_only(services: Services) -> None:
    applied_users(services, services.tenant("acme"), 6)
    pauses: list[float] = []
    policy = RetentionPolicy(batch_size=2, outbox_days=0, pause_seconds=0.25)

    assert prune(services, days_ahead=8, policy=policy, sleep=pauses.append).journal == 5
    assert pauses == [0.25, 0.25]  # three batches, the last one short


def test_a_run_stops_after_its_batch_cap_and_the_next_run_goes_on(services: Services) -> None:
    applied_users(services, services.tenant("acme"), 6)
    policy = RetentionPolicy(batch_size=2, outbox_days=0)

    assert prune(services, days_ahead=8, policy=policy, max_batches=2).journal == 4
    assert prune(services, days_ahead=8, policy=policy, max_batches=2).journal == 1
    assert prune(services, days_ahead=8, policy=policy, max_batches=2).journal == 0


def test_a_dry_run_deletes_nothing_and_counts_what_the_run_then_deletes(
    services: Services,
) -> None:
    applied_users(services, services.tenant("acme"), 5)
    for _ in range(3):
        add_dead_letter(services, days_old=40)
    before = counts(services)

    dry = prune(services, days_ahead=8, dry_run=True)

    assert dry == PruneReport(journal=4, outbox=4, dead_letters=2, dry_run=True)
    assert counts(services) == before
    real = prune(services, days_ahead=8, policy=RetentionPolicy(batch_size=3))
    assert real == PruneReport(journal=4, outbox=4, dead_letters=2)


# --- nothing later needs a pruned entry ------------------------------------------------------


def test_resources_whose_history_is_pruned_still_change_in_order_and_replay_their_create(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    body = {"schemas": [USER_SCHEMA], "userName": "ann@example.com", "externalId": "ann-1"}
    ann = services.writes.create(acme, "User", body, request_id="first").resource
    services.user(acme, "newest@example.com")
    services.drain()
    assert prune(services, days_ahead=8).journal == 1
    assert seq_of(services, ann.id) == 0  # none of ann's entries is left

    retried = services.writes.create(acme, "User", dict(body), request_id="retry")
    assert (retried.resource.id, retried.created) == (ann.id, False)
    services.writes.patch(acme, "User", ann.id, patch_body(
        {"op": "replace", "path": "displayName", "value": "Ann"}), if_match=None,
        request_id="patch")
    services.writes.patch(acme, "User", ann.id, patch_body(
        {"op": "replace", "path": "active", "value": False}), if_match=None, request_id="off")
    services.drain()
    with services.sessions.begin() as session:
        row = session.execute(select(User).where(User.id == ann.id)).scalar_one()
        assert (row.display_name, row.active, row.version) == ("Ann", False, 3)

    services.writes.delete(acme, "User", ann.id, if_match=None, request_id="delete")
    services.drain()
    with services.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(User)
                              .where(User.id == ann.id)) == 0


def test_a_dead_letter_still_replays_after_the_journal_around_it_is_pruned(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    ghost = services.user(acme, "ghost@example.com")
    with services.sessions.begin() as session:  # its create never becomes due
        session.execute(update(JournalEntry).where(JournalEntry.resource_id == ghost)
                        .values(not_before=FAR_FUTURE))
    group = services.group(acme, "Engineering", [ghost])
    strict = Drainer(services.sessions, default_protocol(), retry=RetryPolicy(limit=1))
    assert strict.drain().dead == 1
    applied_users(services, acme, 3)

    assert prune(services, days_ahead=8).journal == 2  # the dead entry and the newest stay
    assert journal_statuses(services).count("dead") == 1

    with services.sessions.begin() as session:
        session.execute(update(JournalEntry).where(JournalEntry.resource_id == ghost)
                        .values(not_before=None))
        letter = dead_letters.list_dead_letters(session, tenant_id=acme.id)[0]
        dead_letters.replay(session, letter.id, now=utc_now())
    services.drain()
    with services.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(User)
                              .where(User.id == ghost)) == 1
        assert [row.resource_id for row in session.execute(
            select(OutboxEvent.resource_id).where(OutboxEvent.event_type == "group.created")
        )] == [group]


# --- PostgreSQL: never waiting for a writer's lock -------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks
def test_pruning_skips_a_row_another_transaction_holds_instead_of_waiting(
    services: Services, db_engine: Engine
) -> None:
    assert db_engine.dialect.name == "postgresql"
    applied_users(services, services.tenant("acme"), 5)
    held = journal_seqs(services)[0]
    reports: list[PruneReport] = []

    with db_engine.connect() as other, other.begin():
        other.execute(select(JournalEntry.seq).where(JournalEntry.seq == held)
                      .with_for_update())
        pruning = threading.Thread(target=lambda: reports.append(prune(services, days_ahead=8)))
        pruning.start()
        pruning.join(timeout=30)
        assert not pruning.is_alive(), "pruning waited for the held row"
    assert reports[0].journal == 3
    assert held in journal_seqs(services)
    assert prune(services, days_ahead=8).journal == 1
