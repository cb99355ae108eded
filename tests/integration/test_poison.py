"""Poison-proof: what is acknowledged applies, and what fails anyway stops nobody else.

On SQLite and PostgreSQL alike:
- writes the workers could never apply are refused when they are accepted (4xx);
- one folding rule decides which spellings of a userName / displayName are one key, at
  acceptance and in the applied tables (a property over Unicode strings checks they agree);
- an entry made to fail at apply (a command put in the journal behind acceptance's back) is
  retried alone with backoff and becomes a dead letter naming the exception and the request
  id, while every other resource and tenant applies; reads of its group never fail.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from scimflow.ops.tenant_figures import tenant_status
from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.errors import InvalidValue, NotFound, Uniqueness
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.services.reads import SearchQuery
from scimflow.pipeline.store import dead_letters, journal
from scimflow.pipeline.store.models import Group, JournalEntry, User
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import GROUP_SCHEMA, USER_SCHEMA, Services
from tests.integration.test_acceptance_applies import FastForward

RETRY = RetryPolicy(base_seconds=1, max_seconds=4, limit=3)


def patch_group(services: Services, tenant: TenantRef, group_id: str, *ops: Any) -> None:
    services.writes.patch(tenant, "Group", group_id, patch_body(*ops), if_match=None,
                          request_id="t")


def patch_user(services: Services, tenant: TenantRef, user_id: str, *ops: Any) -> None:
    services.writes.patch(tenant, "User", user_id, patch_body(*ops), if_match=None,
                          request_id="t")


def statuses(services: Services, tenant: TenantRef) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(
            select(JournalEntry.status).where(JournalEntry.tenant_id == tenant.id)
        ))


# --- refused at acceptance -------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "members", "value": [{"display": "x"}]},
        {"op": "replace", "path": "members", "value": [{"display": "x"}]},
        {"op": "add", "value": {"members": [{"display": "x"}]}},
        {"op": "add", "path": "members", "value": [{"value": "USER", "display": "x\x00"}]},
        {"op": "replace", "path": "displayName", "value": "g\x00"},
        {"op": "add", "path": "members", "value": [{"value": "SELF"}]},
        # An add through a value filter creates the member it names: checked like any other.
        {"op": "add", "path": 'members[value eq "USER"].display', "value": "d" * 513},
        {"op": "add", "path": 'members[value eq "SELF"].display', "value": "me"},
        {"op": "add", "path": 'members[value eq "NOBODY"].display', "value": "ghost"},
    ],
)
def test_group_patches_the_workers_could_not_apply_are_refused(
    services: Services, operation: dict[str, Any]
) -> None:
    tenant = services.tenant("acme")
    user_id = services.user(tenant, "ann")
    group_id = services.group(tenant, "staff")
    rendered = (json.dumps(operation).replace("USER", user_id).replace("SELF", group_id)
                .replace("NOBODY", str(uuid.uuid4())))
    with pytest.raises(InvalidValue):
        patch_group(services, tenant, group_id, json.loads(rendered))
    services.drain()
    assert set(statuses(services, tenant)) == {"applied"}


def test_a_member_added_through_a_value_filter_applies(services: Services) -> None:
    tenant = services.tenant("acme")
    user_id = services.user(tenant, "ann")
    group_id = services.group(tenant, "staff")
    path = f'members[value eq "{user_id}"].display'
    patch_group(services, tenant, group_id, {"op": "add", "path": path, "value": "Ann"})
    services.drain()
    assert set(statuses(services, tenant)) == {"applied"}


def test_a_member_added_through_a_value_filter_waits_for_its_user(services: Services) -> None:
    """As a member added by value does: the membership never names a user not yet applied."""
    tenant = services.tenant("acme")
    group_id = services.group(tenant, "staff")
    services.drain()
    user_id = services.user(tenant, "ann")
    with services.sessions.begin() as session:  # the user's create is not due yet
        session.execute(update(JournalEntry).where(JournalEntry.resource_id == user_id)
                        .values(not_before=datetime(2100, 1, 1, tzinfo=UTC)))
    path = f'members[value eq "{user_id}"].display'
    patch_group(services, tenant, group_id, {"op": "add", "path": path, "value": "Ann"})
    services.drainer.drain()
    with services.sessions() as session:
        waiting = session.scalars(select(JournalEntry.last_error).where(
            JournalEntry.resource_id == group_id, JournalEntry.status == "pending")).all()
    assert waiting == [f"waiting for members: {user_id}"]
    with services.sessions.begin() as session:
        session.execute(update(JournalEntry).values(not_before=None))
    services.drainer.drain()
    assert set(statuses(services, tenant)) == {"applied"}
    member = services.reads.get(tenant, "Group", group_id).members or []
    assert [(m["value"], m.get("display")) for m in member] == [(user_id, "Ann")]


def test_a_group_cannot_replace_its_members_with_itself(services: Services) -> None:
    tenant = services.tenant("acme")
    group_id = services.group(tenant, "staff")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "staff", "members": [{"value": group_id}]}
    with pytest.raises(InvalidValue, match="itself"):
        services.writes.replace(tenant, "Group", group_id, body, if_match=None, request_id="t")


@pytest.mark.parametrize(
    "attributes",
    [{"userName": "nul\x00"}, {"displayName": "a\x00b"}, {"title": "\x00"},
     {"name": {"givenName": "\x00"}}, {"externalId": "e\x00"}],
)
def test_nul_in_a_user_is_refused(services: Services, attributes: dict[str, Any]) -> None:
    tenant = services.tenant("acme")
    body = {"schemas": [USER_SCHEMA], "userName": "ann", **attributes}
    with pytest.raises(InvalidValue):
        services.writes.create(tenant, "User", body, request_id="t")


@pytest.mark.parametrize("path", ["title", "nickName", "displayName"])
def test_nul_in_a_user_patch_is_refused(services: Services, path: str) -> None:
    tenant = services.tenant("acme")
    user_id = services.user(tenant, "ann")
    with pytest.raises(InvalidValue):
        patch_user(services, tenant, user_id, {"op": "replace", "path": path, "value": "t\x00"})


def test_an_id_holding_nul_is_not_found(services: Services) -> None:
    tenant = services.tenant("acme")
    with pytest.raises(NotFound):
        services.reads.get(tenant, "User", "abc\x00")
    with pytest.raises(NotFound):
        patch_user(services, tenant, "abc\x00", {"op": "replace", "path": "title", "value": "x"})


# --- one folding rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("οδοσ", "ΟΔΟΣ", True),
        ("Straße", "STRASSE", True),
        ("é", "e\u0301", True),
        ("ivan", "İvan", False),
        ("i", "\u0131", False),  # dotless i
    ],
)
def test_user_names_are_one_key_exactly_when_they_fold_alike(
    services: Services, first: str, second: str, same: bool
) -> None:
    tenant = services.tenant("acme")
    services.user(tenant, first)
    if same:
        with pytest.raises(Uniqueness):
            services.user(tenant, second)
    else:
        services.user(tenant, second)
    services.drain()
    assert set(statuses(services, tenant)) == {"applied"}


def test_group_names_istanbul_and_dotted_istanbul_are_distinct_and_both_apply(
    services: Services,
) -> None:
    tenant = services.tenant("acme")
    services.group(tenant, "istanbul")
    services.group(tenant, "İstanbul")
    with pytest.raises(Uniqueness):
        services.group(tenant, "ISTANBUL")
    services.drain()
    with services.sessions() as session:
        names = session.scalars(select(Group.display_name).where(Group.tenant_id == tenant.id))
        assert sorted(names) == ["istanbul", "İstanbul"]


names = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    min_size=1, max_size=6,
)
variants = st.sampled_from([str.upper, str.lower, str.casefold, str.title, str.swapcase])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=names, change=variants)
def test_acceptance_and_the_database_agree_on_key_equality(
    services: Services, first: str, change: Any
) -> None:
    """Whatever two names are, both apply, or the second is refused: never a conflict later."""
    second = change(first)
    tenant = services.tenant(f"t-{uuid.uuid4()}")
    services.user(tenant, first)
    try:
        replayed = not services.writes.create(
            tenant, "User", {"schemas": [USER_SCHEMA], "userName": second}, request_id="t"
        ).created
    except Uniqueness:
        replayed = True
    assert replayed == (fold_key(first) == fold_key(second))
    services.drain()
    with services.sessions() as session:
        applied = session.scalars(select(User.user_name).where(User.tenant_id == tenant.id))
        assert len(set(map(fold_key, applied))) == len(statuses(services, tenant))


# --- isolation of an entry that fails anyway -------------------------------------------------


def journal_poison(services: Services, tenant: TenantRef, group_id: str) -> int:
    """A member add without a `value`, put in the journal behind acceptance's back."""
    command = Command(CommandKind.PATCH, "Group", group_id,
                      operations=({"op": "add", "path": "members", "value": [{"display": "x"}]},))
    values = journal.entry_values(tenant.id, command, now=FastForward().now,
                                  request_id="req-poison")
    with services.sessions.begin() as session:
        return int(session.execute(
            insert(JournalEntry).values(values).returning(JournalEntry.seq)
        ).scalar_one())


def test_an_entry_that_fails_to_apply_is_retried_alone_then_dead_letters(
    services: Services,
) -> None:
    poisoned = services.tenant("poisoned")
    group_id = services.group(poisoned, "staff")
    services.drain()
    seq = journal_poison(services, poisoned, group_id)
    patch_group(services, poisoned, group_id,
                {"op": "replace", "path": "displayName", "value": "renamed"})
    other_user = services.user(poisoned, "ann")
    healthy = services.tenant("healthy")
    healthy_users = [services.user(healthy, f"user{i}") for i in range(50)]

    clock = FastForward()
    drainer = Drainer(services.sessions, default_protocol(), retry=RETRY, clock=clock)
    first = drainer.drain()
    assert first.postponed == 1 and first.dead == 0
    assert set(statuses(services, healthy)) == {"applied"}
    with services.sessions() as session:
        entry = session.get_one(JournalEntry, seq)
        assert entry.attempts == 1 and "KeyError" in (entry.last_error or "")
        assert session.get(User, (poisoned.id, other_user)) is not None
        assert len(healthy_users) == session.query(User).filter_by(tenant_id=healthy.id).count()
        figures = {row["tenant"]: row for row in tenant_status(session, now=clock.now)}
        assert figures["poisoned"]["retrying"] == 1 and figures["healthy"]["retrying"] == 0
    # Reads show the acknowledged state, whatever the journal holds.
    assert services.reads.get(poisoned, "Group", group_id).resource.data["displayName"]
    services.reads.search(poisoned, "Group", SearchQuery())

    for _ in range(RETRY.limit):
        clock.now += timedelta(seconds=RETRY.max_seconds * 2)
        drainer.drain()
    with services.sessions() as session:
        letters = dead_letters.list_dead_letters(session, tenant_id=poisoned.id)
        renamed = session.scalars(select(Group.display_name).where(Group.id == group_id)).one()
    assert [letter.journal_seq for letter in letters] == [seq]
    assert "KeyError" in letters[0].reason and "req-poison" in letters[0].reason
    assert renamed == "renamed"  # the entry behind the dead letter applied
    assert set(statuses(services, poisoned)) == {"applied", "dead"}


def test_a_postponed_deprovisioning_entry_does_not_starve_other_work(services: Services) -> None:
    """A resource whose oldest entry is postponed is claimed once, not in every batch after."""
    tenant = services.tenant("acme")
    waiting_user = services.user(tenant, "late")
    group_id = services.group(tenant, "staff", [waiting_user])
    services.writes.delete(tenant, "Group", group_id, if_match=None, request_id="t")
    with services.sessions.begin() as session:  # the user lands only later
        session.execute(update(JournalEntry).where(JournalEntry.resource_id == waiting_user)
                        .values(not_before=FastForward().now + timedelta(hours=1)))
    others = [services.user(tenant, f"user{i}") for i in range(5)]
    clock = FastForward()
    drainer = Drainer(services.sessions, default_protocol(), retry=RETRY, clock=clock)
    drainer.drain()
    clock.now += timedelta(seconds=RETRY.max_seconds * 2)
    drainer.drain()
    with services.sessions() as session:
        applied = set(session.scalars(select(User.id).where(User.tenant_id == tenant.id)))
    assert applied == set(others)


def test_only_the_failing_entry_is_charged_when_good_entries_precede_it(
    services: Services,
) -> None:
    """The create journaled before the poison, in the same batch, applies; reads skip it."""
    tenant = services.tenant("acme")
    member = services.user(tenant, "ann")
    group_id = services.group(tenant, "staff", [member])
    seq = journal_poison(services, tenant, group_id)
    found = services.reads.get(tenant, "Group", group_id)
    assert [m["value"] for m in found.members] == [member]  # the poison is not projected
    clock = FastForward()
    drainer = Drainer(services.sessions, default_protocol(), retry=RETRY, clock=clock)
    drainer.drain()
    with services.sessions() as session:
        assert session.get(Group, (tenant.id, group_id)) is not None
        entry = session.get_one(JournalEntry, seq)
        assert entry.attempts == 1 and "req-poison" in (entry.last_error or "")
        created = session.scalars(select(JournalEntry.status).where(
            JournalEntry.resource_id == group_id, JournalEntry.seq < seq)).all()
    assert created == ["applied"]
