"""The events the applying transaction writes, read back from the outbox: the real write path
and the real `Drainer`, on SQLite and PostgreSQL (see conftest.py); the concurrency test needs
two concurrent applying transactions and runs on PostgreSQL only.

What is proven:
- a document has the documented shape (`pipeline/events/model.py`: id, type, schema_version,
  tenant, occurred_at, resource with identity and version, data without password, meta or
  members, changed_attributes for updates, request_id), and a resource's version goes up by
  one per applied change;
- a change is one event: created, updated (with its changed attributes), deprovisioned,
  reactivated, deleted; a write that changes nothing is none; a batch written again entry by
  entry (after its set-based write failed) reports each change once;
- members are reported from what the membership statements really changed: a replace reports
  the difference only, an existing member added again nothing, a deleted user's groups lose
  it, a deleted group reports its deletion alone;
- a deprovisioning reports each session it revoked;
- every event has its own id; positions are contiguous, in journal order per resource, and the
  `event_positions` counter holds the last one;
- positions follow commit order: a reader advancing its cursor while two tenants are drained
  at once sees every event exactly once.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer
from scimflow.pipeline.store import outbox
from scimflow.pipeline.store.models import (
    EventPosition,
    Group,
    JournalEntry,
    OutboxEvent,
    User,
    UserSession,
)
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import GROUP_SCHEMA, USER_SCHEMA, Services
from tests.integration.test_passwords_applied import Pipeline

EVENT_ID = re.compile(r"^evt_[0-9a-f]{32}$")
SCIM_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ENVELOPE = {"id", "type", "schema_version", "tenant", "occurred_at", "resource", "data",
            "request_id"}


@dataclass(frozen=True)
class Stored:
    """An outbox row as a test reads it."""

    position: int
    event_id: str
    type: str
    resource_type: str
    resource_id: str
    journal_seq: int
    document: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.document["resource"]["version"])

    @property
    def member(self) -> str | None:
        member = self.document.get("member")
        return None if member is None else str(member["value"])


# --- helpers ---------------------------------------------------------------------------------


def events(services: Services, *, after: int = 0) -> list[Stored]:
    """Every event past position `after`, in position order."""
    with services.sessions.begin() as session:
        rows = session.execute(
            select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.event_type,
                   OutboxEvent.resource_type, OutboxEvent.resource_id, OutboxEvent.journal_seq,
                   OutboxEvent.payload)
            .where(OutboxEvent.id > after).order_by(OutboxEvent.id)
        )
        return [Stored(*row) for row in rows]


def last_position(services: Services) -> int:
    with services.sessions.begin() as session:
        return outbox.last_position(session)


def drained(services: Services) -> list[Stored]:
    """Drain everything acknowledged; return the events that drain wrote."""
    before = last_position(services)
    services.drain()
    return events(services, after=before)


def types_of(stored: list[Stored]) -> list[str]:
    return [event.type for event in stored]


def patch(services: Services, tenant: TenantRef, type_name: str, resource_id: str,
          *operations: dict[str, Any], request_id: str = "test") -> None:
    services.writes.patch(tenant, type_name, resource_id, patch_body(*operations),
                          if_match=None, request_id=request_id)


def replace_op(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def put_group(services: Services, tenant: TenantRef, group_id: str, name: str,
              members: list[str]) -> None:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name,
            "members": [{"value": member} for member in members]}
    services.writes.replace(tenant, "Group", group_id, body, if_match=None, request_id="put")


def add_members(services: Services, tenant: TenantRef, group_id: str, members: list[str]) -> None:
    patch(services, tenant, "Group", group_id,
          {"op": "add", "path": "members", "value": [{"value": m} for m in members]})


def delete(services: Services, tenant: TenantRef, type_name: str, resource_id: str) -> None:
    services.writes.delete(tenant, type_name, resource_id, if_match=None, request_id="delete")


def applied_version(services: Services, model: type[User] | type[Group], tenant: TenantRef,
                    resource_id: str) -> int:
    with services.sessions.begin() as session:
        version = session.scalar(
            select(model.version).where(model.tenant_id == tenant.id, model.id == resource_id)
        )
    assert version is not None
    return int(version)


def member_events(stored: list[Stored]) -> set[tuple[str, str, str | None]]:
    return {(e.type, e.resource_id, e.member) for e in stored if e.member is not None}


# --- the document ----------------------------------------------------------------------------


def test_a_document_has_the_documented_shape_and_versions_go_up_by_one_per_change(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    body = {"schemas": [USER_SCHEMA], "userName": "ann@example.com", "externalId": "ext-ann",
            "displayName": "Ann", "emails": [{"value": "ann@example.com", "type": "work"}]}
    ann = services.writes.create(acme, "User", body, request_id="req-create").resource.id
    created = drained(services)
    patch(services, acme, "User", ann, replace_op("displayName", "Ann A."), request_id="req-1")
    patch(services, acme, "User", ann, replace_op("title", "Engineer"),
          replace_op("nickName", "annie"), request_id="req-2")
    updated = drained(services)

    assert types_of(created) == ["user.created"]
    assert types_of(updated) == ["user.updated", "user.updated"]
    for number, event in enumerate(created + updated, start=1):
        document = event.document
        assert set(document) == ENVELOPE | ({"changed_attributes"} if number > 1 else set())
        assert EVENT_ID.match(event.event_id) and document["id"] == event.event_id
        assert (document["type"], document["schema_version"]) == (event.type, 1)
        assert document["tenant"] == acme.id
        assert SCIM_TIME.match(document["occurred_at"])
        assert document["resource"] == {"type": "User", "id": ann, "externalId": "ext-ann",
                                        "userName": "ann@example.com", "version": number}
        data = document["data"]
        assert data["id"] == ann and data["schemas"] == [USER_SCHEMA]
        assert data["userName"] == "ann@example.com" and "meta" not in data
    assert created[0].document["data"]["displayName"] == "Ann"
    assert created[0].document["request_id"] == "req-create"
    first, second = (event.document for event in updated)
    assert (first["changed_attributes"], first["request_id"]) == (["displayName"], "req-1")
    assert (second["changed_attributes"], second["request_id"]) == (
        ["nickName", "title"], "req-2")
    assert second["data"]["displayName"] == "Ann A." and second["data"]["title"] == "Engineer"
    assert applied_version(services, User, acme, ann) == 3


def test_a_group_document_names_it_by_display_name_and_holds_no_members(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    ann = services.user(acme, "ann@example.com")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Team", "externalId": "ext-team",
            "members": [{"value": ann}]}
    team = services.writes.create(acme, "Group", body, request_id="req-team").resource.id

    stored = [e for e in drained(services) if e.resource_id == team]

    assert types_of(stored) == ["group.created", "group.member_added"]
    created, added = (event.document for event in stored)
    assert created["resource"] == {"type": "Group", "id": team, "externalId": "ext-team",
                                   "displayName": "Team", "version": 1}
    assert created["data"] == {"schemas": [GROUP_SCHEMA], "id": team, "displayName": "Team",
                               "externalId": "ext-team"}
    assert added["resource"] == created["resource"]
    assert added["member"] == {"value": ann, "type": "User"}
    assert (added["data"], added["request_id"]) == (None, "req-team")


def test_no_password_reaches_a_document(db_engine: Engine) -> None:
    pipeline = Pipeline(db_engine)
    ann = pipeline.create("ann@example.com", password="t1meMa$heen-42")
    assert pipeline.drainer.drain().applied == 1

    with pipeline.sessions() as session:
        document = session.execute(select(OutboxEvent.payload)).scalar_one()
    assert pipeline.applied_password(ann).startswith("$argon2id$")  # the directory has it
    assert document["type"] == "user.created" and "password" not in document["data"]
    assert "argon2" not in str(document) and "t1meMa$heen" not in str(document)


def test_a_password_sent_again_or_changed_is_not_reported(db_engine: Engine) -> None:
    """Re-hashed with a new salt each time an IdP re-sends it: nothing an application learns
    from, and never shown, so a change of only the password makes no event."""
    pipeline = Pipeline(db_engine)
    ann = pipeline.create("ann@example.com", password="t1meMa$heen-42")
    pipeline.drainer.drain()
    pipeline.patch(ann, {"op": "replace", "path": "password", "value": "t1meMa$heen-42"})
    pipeline.patch(ann, {"op": "replace", "path": "password", "value": "an0ther-Passw0rd"})
    pipeline.patch(ann, {"op": "replace", "path": "title", "value": "CTO"})
    assert pipeline.drainer.drain().applied == 3

    with pipeline.sessions() as session:
        documents = list(session.scalars(select(OutboxEvent.payload).order_by(OutboxEvent.id)))
    assert [d["type"] for d in documents] == ["user.created", "user.updated"]
    assert documents[1]["changed_attributes"] == ["title"]
    assert documents[1]["resource"]["version"] == 4


# --- one change, one event -------------------------------------------------------------------


@pytest.mark.parametrize("drain_each", [True, False], ids=["drained-each", "one-batch"])
def test_a_users_life_is_created_updated_deprovisioned_reactivated_deleted(
    services: Services, drain_each: bool
) -> None:
    acme = services.tenant("acme")
    ann = services.user(acme, "ann@example.com", externalId="ext-ann", displayName="Ann")
    steps: list[Callable[[], None]] = [
        lambda: patch(services, acme, "User", ann, replace_op("displayName", "Ann A.")),
        lambda: patch(services, acme, "User", ann, replace_op("active", False)),
        lambda: patch(services, acme, "User", ann, replace_op("active", True)),
        lambda: delete(services, acme, "User", ann),
    ]
    stored = drained(services) if drain_each else []
    for step in steps:
        step()
        if drain_each:
            stored += drained(services)
    if not drain_each:
        stored = drained(services)

    assert types_of(stored) == ["user.created", "user.updated", "user.deprovisioned",
                                "user.reactivated", "user.deleted"]
    assert [event.version for event in stored] == [1, 2, 3, 4, 5]
    assert [event.document.get("changed_attributes") for event in stored] == [
        None, ["displayName"], ["active"], ["active"], None]
    deprovisioned, reactivated, deleted = (event.document for event in stored[2:])
    assert deprovisioned["data"]["active"] is False and reactivated["data"]["active"] is True
    # A deletion has no state left, but still says whom it was about.
    assert deleted["data"] is None
    assert deleted["resource"] == {"type": "User", "id": ann, "externalId": "ext-ann",
                                   "userName": "ann@example.com", "version": 5}
    assert [event.journal_seq for event in stored] == journal_seqs(services, ann)


def journal_seqs(services: Services, resource_id: str) -> list[int]:
    with services.sessions.begin() as session:
        return list(session.scalars(
            select(JournalEntry.seq).where(JournalEntry.resource_id == resource_id)
            .order_by(JournalEntry.seq)
        ))


def test_a_write_that_changes_nothing_makes_no_event(services: Services) -> None:
    acme = services.tenant("acme")
    ann = services.user(acme, "ann@example.com", displayName="Ann")
    drained(services)

    # A PATCH to the value it has: not even journaled.
    patch(services, acme, "User", ann, replace_op("displayName", "Ann"))
    assert drained(services) == []
    # A PUT of what it is: journaled and applied (the version is the ETag the API gave out),
    # but it changed nothing, so it tells nothing.
    body = {"schemas": [USER_SCHEMA], "userName": "ann@example.com", "displayName": "Ann"}
    services.writes.replace(acme, "User", ann, body, if_match=None, request_id="same")
    assert drained(services) == []
    assert applied_version(services, User, acme, ann) == 2

    # The next change reports the version it made.
    patch(services, acme, "User", ann, replace_op("displayName", "Ann A."))
    [event] = drained(services)
    assert (event.type, event.version) == ("user.updated", 3)


def test_a_batch_written_again_entry_by_entry_reports_each_change_once(
    services: Services,
) -> None:
    """Two users swap userNames in one batch: the set-based write fails on the unique index,
    is rolled back, and the batch is written entry by entry. The rolled-back write tells
    nobody; each entry that applies tells once."""
    acme = services.tenant("acme")
    ann, bob = services.user(acme, "ann@example.com"), services.user(acme, "bob@example.com")
    drained(services)
    for user_id, name in ((ann, "tmp@example.com"), (bob, "ann@example.com"),
                          (ann, "bob@example.com")):
        body = {"schemas": [USER_SCHEMA], "userName": name}
        services.writes.replace(acme, "User", user_id, body, if_match=None, request_id=name)

    stored = drained(services)

    assert [(e.type, e.resource_id, e.version) for e in stored] == [
        ("user.updated", ann, 2), ("user.updated", bob, 2), ("user.updated", ann, 3)]
    assert [e.document["resource"]["userName"] for e in stored] == [
        "tmp@example.com", "ann@example.com", "bob@example.com"]
    assert [e.journal_seq for e in stored] == sorted(e.journal_seq for e in stored)


# --- members ---------------------------------------------------------------------------------


def test_a_replace_of_the_members_reports_only_the_difference(services: Services) -> None:
    acme = services.tenant("acme")
    a, b, c = (services.user(acme, f"{name}@example.com") for name in "abc")
    team = services.group(acme, "Team", [a, b])
    assert member_events(drained(services)) == {
        ("group.member_added", team, a), ("group.member_added", team, b)}

    put_group(services, acme, team, "Team", [b, c])
    stored = drained(services)

    # Members alone changed: no group.updated; b, cleared and added back, says nothing.
    assert sorted((e.type, e.member) for e in stored) == [
        ("group.member_added", c), ("group.member_removed", a)]
    assert {(e.resource_id, e.version) for e in stored} == {(team, 2)}
    assert all(e.document["request_id"] == "put" for e in stored)


def test_adding_a_member_already_there_makes_no_event(services: Services) -> None:
    acme = services.tenant("acme")
    a = services.user(acme, "a@example.com")
    team = services.group(acme, "Team", [a])
    drained(services)

    add_members(services, acme, team, [a])

    assert drained(services) == []
    assert applied_version(services, Group, acme, team) == 2  # applied all the same


def test_members_added_and_removed_within_one_batch_report_what_they_changed(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    a, b, c = (services.user(acme, f"{name}@example.com") for name in "abc")
    team = services.group(acme, "Team", [a])
    drained(services)

    add_members(services, acme, team, [b, c])
    patch(services, acme, "Group", team, {"op": "remove", "path": f'members[value eq "{c}"]'})
    patch(services, acme, "Group", team, {"op": "remove", "path": f'members[value eq "{a}"]'})
    patch(services, acme, "Group", team, replace_op("displayName", "Team B"))
    stored = drained(services)

    # c came and went within the batch: nothing to tell about it.
    assert sorted((e.type, e.member) for e in stored) == [
        ("group.member_added", b), ("group.member_removed", a), ("group.updated", None)]
    updated = next(e for e in stored if e.type == "group.updated")
    assert (updated.version, updated.document["changed_attributes"]) == (5, ["displayName"])


def test_deleting_a_member_user_tells_each_of_its_groups(services: Services) -> None:
    acme = services.tenant("acme")
    ann, bob = services.user(acme, "ann@example.com"), services.user(acme, "bob@example.com")
    first = services.group(acme, "First", [ann, bob])
    second = services.group(acme, "Second", [ann])
    drained(services)

    delete(services, acme, "User", ann)
    stored = drained(services)

    assert sorted((e.type, e.resource_id, e.member) for e in stored) == sorted([
        ("user.deleted", ann, None),
        ("group.member_removed", first, ann), ("group.member_removed", second, ann),
    ])
    removed = next(e for e in stored if e.resource_id == second)
    # The group was not written: it is named as applied, at the version it has.
    assert removed.document["resource"] == {"type": "Group", "id": second,
                                            "externalId": None, "displayName": "Second",
                                            "version": 1}
    assert removed.document["member"] == {"value": ann, "type": "User"}
    # It is the user's deletion that removed it: its entry and request are the event's.
    deletion = next(e for e in stored if e.type == "user.deleted")
    assert removed.journal_seq == deletion.journal_seq > 0
    assert removed.document["request_id"] == deletion.document["request_id"] is not None


def test_deleting_a_group_is_one_event_not_one_per_member(services: Services) -> None:
    acme = services.tenant("acme")
    members = [services.user(acme, f"m{i}@example.com") for i in range(3)]
    team = services.group(acme, "Team", members)
    drained(services)

    delete(services, acme, "Group", team)

    [event] = drained(services)
    assert (event.type, event.resource_id, event.version) == ("group.deleted", team, 2)
    assert event.document["resource"]["displayName"] == "Team"


def test_a_user_and_its_group_deleted_in_one_batch_are_two_events(services: Services) -> None:
    acme = services.tenant("acme")
    ann = services.user(acme, "ann@example.com")
    team = services.group(acme, "Team", [ann])
    drained(services)

    delete(services, acme, "Group", team)
    delete(services, acme, "User", ann)

    assert sorted(types_of(drained(services))) == ["group.deleted", "user.deleted"]


# --- sessions --------------------------------------------------------------------------------


def add_sessions(services: Services, tenant: TenantRef, user_id: str,
                 ids: list[str], revoked_at: datetime | None = None) -> None:
    created = datetime.now(UTC) - timedelta(days=1)
    with services.sessions.begin() as session:
        session.execute(insert(UserSession), [
            {"id": session_id, "tenant_id": tenant.id, "user_id": user_id,
             "created_at": created, "revoked_at": revoked_at}
            for session_id in ids
        ])


def test_a_deprovisioning_reports_each_session_it_revoked(services: Services) -> None:
    acme = services.tenant("acme")
    ann, bob = services.user(acme, "ann@example.com"), services.user(acme, "bob@example.com")
    drained(services)
    add_sessions(services, acme, ann, ["s-ann-1", "s-ann-2"])
    add_sessions(services, acme, ann, ["s-ann-old"], revoked_at=datetime(2024, 1, 1, tzinfo=UTC))
    add_sessions(services, acme, bob, ["s-bob-1"])

    patch(services, acme, "User", ann, replace_op("active", False), request_id="req-off")
    stored = drained(services)

    assert types_of(stored) == ["user.deprovisioned", "session.revoked", "session.revoked"]
    revoked = [e for e in stored if e.type == "session.revoked"]
    assert sorted(e.document["session"]["id"] for e in revoked) == ["s-ann-1", "s-ann-2"]
    for event in revoked:
        document = event.document
        assert (event.resource_id, event.version) == (ann, 2)
        assert document["resource"]["userName"] == "ann@example.com"
        assert document["session"]["reason"] == "deprovisioned"
        assert SCIM_TIME.match(document["session"]["revoked_at"])
        assert (document["data"], document["request_id"]) == (None, "req-off")

    # A deletion revokes what is left, and says so.
    add_sessions(services, acme, bob, ["s-bob-2"])
    delete(services, acme, "User", bob)
    stored = drained(services)
    assert types_of(stored) == ["user.deleted", "session.revoked", "session.revoked"]
    assert {e.document["session"]["reason"] for e in stored[1:]} == {"deleted"}


# --- ids and positions -----------------------------------------------------------------------


def test_events_have_their_own_ids_and_contiguous_positions_in_journal_order(
    services: Services,
) -> None:
    worker = Drainer(services.sessions, default_protocol(), batch_size=5)
    tenants = [services.tenant("acme"), services.tenant("globex")]
    users, teams = {}, {}
    for tenant in tenants:
        users[tenant.id] = [services.user(tenant, f"u{i}@example.com", displayName="r0")
                            for i in range(12)]
        for round_ in range(1, 3):
            for user_id in users[tenant.id][::round_]:
                patch(services, tenant, "User", user_id, replace_op("displayName", f"r{round_}"))
        teams[tenant.id] = services.group(tenant, "Team", users[tenant.id][:4])
    assert worker.drain().applied == 2 * (12 + 12 + 6 + 1)
    # The group's member changes, each drained on its own (within one batch they would be
    # reported net: see the test above).
    for tenant in tenants:
        add_members(services, tenant, teams[tenant.id], users[tenant.id][4:8])
    assert worker.drain().applied == 2
    for tenant in tenants:
        put_group(services, tenant, teams[tenant.id], "Team", users[tenant.id][2:10])
    assert worker.drain().applied == 2

    stored = events(services)
    assert [e.position for e in stored] == list(range(1, len(stored) + 1))
    assert last_position(services) == len(stored)
    with services.sessions.begin() as session:
        counter = session.scalar(select(EventPosition.last))
    assert counter == stored[-1].position
    assert len({e.event_id for e in stored}) == len(stored)
    assert all(e.document["id"] == e.event_id for e in stored)
    by_resource: dict[str, list[Stored]] = defaultdict(list)
    for event in stored:
        by_resource[event.resource_id].append(event)
    for resource_events in by_resource.values():
        seqs = [e.journal_seq for e in resource_events]
        versions = [e.version for e in resource_events]
        assert seqs == sorted(seqs) and versions == sorted(versions), resource_events
        entry_events = [e.version for e in resource_events if e.member is None]
        assert len(entry_events) == len(set(entry_events))  # one event per change
    # Each user: created, then one update per round that wrote it.
    assert sum(e.type == "user.updated" for e in stored) == 2 * (12 + 6)
    assert sum(e.type == "group.member_added" for e in stored) == 2 * (4 + 4 + 2)
    assert sum(e.type == "group.member_removed" for e in stored) == 2 * 2


# --- commit order ----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # concurrent writers
@pytest.mark.timeout(180)
def test_a_cursor_reader_sees_every_event_once_while_two_tenants_drain_at_once(
    services: Services,
) -> None:
    tenants = [services.tenant("acme"), services.tenant("globex")]
    for tenant in tenants:
        for i in range(200):
            user_id = services.user(tenant, f"c{i:03}@example.com")
            if i % 2:
                patch(services, tenant, "User", user_id, replace_op("displayName", f"d{i}"))
    expected = 2 * (200 + 100)

    draining = threading.Barrier(3)
    finished = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def drain(tenant: TenantRef) -> None:
        worker = Drainer(services.sessions, default_protocol(), batch_size=8)
        try:
            draining.wait()
            while worker.drain_once(tenant.id).resources:
                pass
        except BaseException as error:  # surfaced in the main thread
            errors.append(error)

    def read() -> None:
        cursor = 0
        try:
            draining.wait()
            while True:
                # Read after noting whether the drains had ended: an empty page read then is
                # the last word.
                done = finished.is_set()
                with services.sessions() as session:
                    page = outbox.read_after(session, cursor, limit=25)
                seen.extend(event.position for event in page)
                if page:
                    cursor = page[-1].position
                elif done:
                    return
                else:
                    time.sleep(0.001)
        except BaseException as error:
            errors.append(error)

    drainers = [threading.Thread(target=drain, args=(tenant,)) for tenant in tenants]
    reader = threading.Thread(target=read)
    for thread in [*drainers, reader]:
        thread.start()
    for thread in drainers:
        thread.join(120)
    finished.set()
    reader.join(30)
    assert not errors, errors
    assert not reader.is_alive()

    stored = events(services)
    assert [e.position for e in stored] == list(range(1, expected + 1))
    assert last_position(services) == expected
    assert {e.document["tenant"] for e in stored} == {tenant.id for tenant in tenants}
    # Every event exactly once, in position order: none committed below the cursor later.
    assert seen == list(range(1, expected + 1))
