"""A drain batch writes with a fixed number of statements, and writes every value exactly.

On PostgreSQL the batch's rows travel as one JSON document per table (store/directory.py) and
its seqs as one array: these tests prove that nothing is lost or reshaped on the way (text
beyond ASCII, nulls, false, nested values, timestamps), in the applied row and in the event
document alike, and that the statement count of a
batch does not grow with the number of entries in it. Both run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.store.models import JournalEntry, OutboxEvent, User
from tests.integration import test_drain
from tests.integration.conftest import USER_SCHEMA, Services
from tests.integration.test_drain import ManualClock

APPLIED_AT = datetime(2024, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)


def drain_at(services: Services, moment: datetime = APPLIED_AT, batch_size: int = 500) -> int:
    drainer = Drainer(services.sessions, default_protocol(), batch_size=batch_size,
                      clock=lambda: moment)
    report = drainer.drain()
    assert report.dead == 0 and report.postponed == 0, report
    return report.applied


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive UTC timestamps.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_an_applied_user_row_holds_exactly_what_was_acknowledged(services: Services) -> None:
    tenant = services.tenant("acme")
    user_id = services.user(
        tenant, "Zoë.Ångström@Example.com", active=False, displayName="Zoë \"Z\" Ångström",
        name={"givenName": "Zoë", "familyName": "Ångström\\n"},
        emails=[{"value": "zoe@example.com", "primary": True, "type": "work"}],
    )
    assert drain_at(services) == 1

    with services.sessions() as session:
        row = session.execute(select(User).where(User.id == user_id)).scalar_one()
        event = session.execute(select(OutboxEvent)).scalar_one()
    assert (row.user_name, row.display_name, row.active, row.external_id) == (
        "Zoë.Ångström@Example.com", "Zoë \"Z\" Ångström", False, None)
    assert row.user_name_key == "zoë.ångström@example.com"
    assert row.data["name"] == {"givenName": "Zoë", "familyName": "Ångström\\n"}
    assert row.data["emails"] == [{"value": "zoe@example.com", "primary": True, "type": "work"}]
    assert row.data["active"] is False and "externalId" not in row.data
    assert (row.version, _utc(row.created_at), _utc(row.updated_at)) == (
        1, APPLIED_AT, APPLIED_AT)
    assert (event.event_type, event.resource_id, event.id) == ("user.created", user_id, 1)
    assert _utc(event.created_at) == APPLIED_AT
    # The event document travels the same way, and holds the values exactly as well.
    assert event.payload == {
        "id": event.event_id,
        "type": "user.created",
        "schema_version": 1,
        "tenant": tenant.id,
        "occurred_at": "2024-06-01T12:30:15.123Z",
        "resource": {"type": "User", "id": user_id, "externalId": None,
                     "userName": "Zoë.Ångström@Example.com", "version": 1},
        "data": {
            "schemas": [USER_SCHEMA], "id": user_id, "userName": "Zoë.Ångström@Example.com",
            "active": False, "displayName": "Zoë \"Z\" Ångström",
            "name": {"givenName": "Zoë", "familyName": "Ångström\\n"},
            "emails": [{"value": "zoe@example.com", "primary": True, "type": "work"}],
        },
        "request_id": "test",
    }


def test_an_update_keeps_created_at_and_bumps_the_version(services: Services) -> None:
    tenant = services.tenant("acme")
    user_id = services.user(tenant, "ann@example.com", externalId="ext-1")
    drain_at(services)
    later = datetime(2024, 6, 2, tzinfo=UTC)
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann@example.com", "externalId": "ext-2"}
    services.writes.replace(tenant, "User", user_id, body, if_match=None, request_id="t")
    assert drain_at(services, later) == 1

    with services.sessions() as session:
        row = session.execute(select(User).where(User.id == user_id)).scalar_one()
        statuses = session.execute(select(JournalEntry.status)).scalars().all()
    assert (row.external_id, row.version) == ("ext-2", 2)
    assert (_utc(row.created_at), _utc(row.updated_at)) == (APPLIED_AT, later)
    assert statuses == ["applied", "applied"]


def statements_to_apply(services: Services, statements: list[str], users: int) -> list[str]:
    tenant = services.tenant(f"t{users}")
    for i in range(users):
        services.user(tenant, f"user{i:04}@example.com")
    statements.clear()
    assert drain_at(services) == users
    return list(statements)


def test_a_batch_costs_the_same_statements_for_5_or_300_creates(
    services: Services, statements: list[str]
) -> None:
    few = statements_to_apply(services, statements, 5)
    many = statements_to_apply(services, statements, 300)

    assert len(many) == len(few), "\n".join(many)
    assert len(many) <= 16, "\n".join(many)


def test_entries_behind_postponed_heads_of_several_resources_all_wait_with_them(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    clock = ManualClock()
    worker = test_drain.drainer(services, clock=clock,
                                retry=RetryPolicy(base_seconds=30, max_seconds=60))
    groups = [services.group(acme, f"Team {i}") for i in range(3)]
    worker.drain()
    late = services.user(acme, "late@example.com")
    test_drain.make_not_due(services, late, test_drain.FAR_FUTURE)
    for group_id in groups:
        test_drain.add_members(services, acme, group_id, [late])
    assert worker.drain().postponed == 3
    for i, group_id in enumerate(groups):
        test_drain.rename_group(services, acme, group_id, f"Renamed {i}")  # due, but behind

    clock.advance(1)
    report = worker.drain()

    assert report.applied == 0 and report.postponed == 0
    for group_id in groups:
        _, head, behind = test_drain.journal_of(services, group_id)
        assert head.not_before is not None and behind.not_before == head.not_before
        assert (behind.status, behind.attempts) == ("pending", 0)
