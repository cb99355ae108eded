"""Whatever the API acknowledges, the workers apply: a property over generated SCIM writes.

Hypothesis generates sequences of writes (valid ones, malformed ones, and the dialects real
IdPs speak: Entra's capitalised ops and "False" strings, Okta's path-less PATCH, member removal
by value array, and strings the databases cannot store) and sends each through the real
acceptance path (`WriteService`). A write may be refused, with a SCIM error (4xx); anything
else escaping acceptance would be a 500. Then the real worker code (`Drainer`) applies the
journal, and every acknowledged command must apply: nothing dead, nothing left pending, and
the applied directory equal to what the API acknowledged, resource by resource.

Runs on SQLite and on PostgreSQL; `EXAMPLES` sequences of up to `MAX_WRITES` writes each, per
database and CI run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.services.reads import SearchQuery
from scimflow.pipeline.store.models import AcknowledgedRow, Group, JournalEntry, User
from scimflow.pipeline.store.tenants import TenantRef
from tests.integration.conftest import GROUP_SCHEMA, USER_SCHEMA, Services

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
EXAMPLES = 100
MAX_WRITES = 12

# Keys chosen to collide under one folding rule and not another, and strings no database can
# store, beside ordinary text.
TRICKY = [
    "ann", "Ann", "ANN", "οδοσ", "ΟΔΟΣ", "οδος", "İvan", "ivan", "Straße", "STRASSE", "é",
    "e\u0301", "x\x00y", "", " ", "a" * 600, "ß" * 300, "ﬃ", "ǅ", "\U0001f600",
]  # fmt: skip
texts = st.sampled_from(TRICKY) | st.text(max_size=6)
booleans = st.sampled_from([True, False, "True", "False", "true", "yes", None, 1])
scalars = texts | booleans | st.integers(-2, 2)


def user_body(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": draw(texts)}
    optional: dict[str, Any] = {
        "externalId": texts,
        "displayName": texts,
        "active": booleans,
        "title": texts,
        "nickName": texts,
        "name": st.fixed_dictionaries({"givenName": texts}),
        "emails": st.lists(st.fixed_dictionaries({"value": texts, "type": st.just("work")}),
                           max_size=2),
        "password": texts,
        "unknownAttribute": scalars,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


def member_values(draw: st.DrawFn, ids: list[str], self_id: str | None) -> list[Any]:
    refs = st.sampled_from([*ids, "no-such-id", *([self_id] if self_id else [])])
    member = st.one_of(
        st.fixed_dictionaries({"value": refs}),
        st.fixed_dictionaries({"value": refs, "display": texts}),
        st.fixed_dictionaries({"value": refs, "type": st.sampled_from(["User", "Group"])}),
        st.fixed_dictionaries({"display": texts}),
        st.just("not-an-object"),
    )
    return draw(st.lists(member, max_size=3))


def group_body(draw: st.DrawFn, ids: list[str], self_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": draw(texts)}
    if draw(st.booleans()):
        body["members"] = member_values(draw, ids, self_id)
    if draw(st.booleans()):
        body["externalId"] = draw(texts)
    return body


def user_operation(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["add", "replace", "remove", "Add", "Replace", "Remove"]))
    path = draw(st.sampled_from([
        "title", "displayName", "active", "userName", "externalId", "nickName", "emails",
        'emails[type eq "work"].value', "name.givenName", "password", None,
    ]))  # fmt: skip
    if path is None:
        return {"op": op, "value": {draw(st.sampled_from(["title", "active", "userName"])):
                                    draw(scalars)}}
    value = draw(scalars | st.lists(st.fixed_dictionaries({"value": texts}), max_size=2))
    return {"op": op, "path": path, "value": value}


def group_operation(draw: st.DrawFn, ids: list[str], self_id: str) -> dict[str, Any]:
    op = draw(st.sampled_from(["add", "replace", "remove", "Add", "Replace", "Remove"]))
    ref = draw(st.sampled_from([*ids, self_id, "no-such-id"]))
    path = draw(st.sampled_from([
        "members", f'members[value eq "{ref}"]', f'members[value eq "{ref}"].display',
        "displayName", "externalId", None,
    ]))  # fmt: skip
    if path is None:
        return {"op": op, "value": {"members": member_values(draw, ids, self_id)}}
    if path == "members":
        return {"op": op, "path": path, "value": member_values(draw, ids, self_id)}
    return {"op": op, "path": path, "value": draw(texts)}


def one_write(
    draw: st.DrawFn, services: Services, tenant: TenantRef, ids: dict[str, list[str]]
) -> None:
    """Draw one write and send it through acceptance; a SCIM error is a legitimate answer."""
    writes = services.writes
    everyone = ids["User"] + ids["Group"]
    kind = draw(st.sampled_from(
        ["create user", "create group", "patch", "patch", "replace", "delete"]
    ))  # fmt: skip
    type_name = draw(st.sampled_from(["User", "Group"]))
    target = draw(st.sampled_from(ids[type_name])) if ids[type_name] else None
    try:
        if kind == "create user":
            ids["User"].append(writes.create(tenant, "User", user_body(draw),
                                             request_id="p").resource.id)
        elif kind == "create group":
            body = group_body(draw, everyone)
            ids["Group"].append(writes.create(tenant, "Group", body, request_id="p").resource.id)
        elif target is None:
            return
        elif kind == "patch":
            operation = (user_operation(draw) if type_name == "User"
                         else group_operation(draw, everyone, target))
            payload = {"schemas": [PATCH_SCHEMA], "Operations": [operation]}
            writes.patch(tenant, type_name, target, payload, if_match=None, request_id="p")
        elif kind == "replace":
            body = user_body(draw) if type_name == "User" else group_body(draw, everyone, target)
            writes.replace(tenant, type_name, target, body, if_match=None, request_id="p")
        else:
            writes.delete(tenant, type_name, target, if_match=None, request_id="p")
    except ScimError as ex:
        assert 400 <= ex.status < 500, ex
        event(f"{kind}: refused {ex.status} {ex.scim_type or ''}")
        return
    event(f"{kind}: acknowledged")


@dataclass
class FastForward:
    """The workers' clock, jumped past every backoff between drains."""

    now: datetime = field(default_factory=utc_now)

    def __call__(self) -> datetime:
        return self.now


def drain_until_settled(services: Services, tenant: TenantRef) -> list[Any]:
    """Drain as the workers would, waking postponed entries when their backoff ends.

    A membership naming a user that is acknowledged but not yet applied waits for it (the
    deprovisioning lane can run ahead of that user's create), so one pass is not enough.
    """
    clock = FastForward()
    drainer = Drainer(services.sessions, default_protocol(), clock=clock)
    unapplied: list[Any] = []
    for _ in range(5):
        drainer.drain()
        with services.sessions() as session:
            unapplied = list(session.execute(
                select(JournalEntry.status, JournalEntry.last_error, JournalEntry.command).where(
                    JournalEntry.tenant_id == tenant.id, JournalEntry.status != "applied"
                )
            ).all())
        if not unapplied:
            break
        clock.now += timedelta(seconds=RetryPolicy().max_seconds * 2)
    return unapplied


def assert_everything_applied(services: Services, tenant: TenantRef) -> None:
    assert drain_until_settled(services, tenant) == []
    with services.sessions() as session:
        acknowledged = {
            row.id: row.data
            for row in session.scalars(
                select(AcknowledgedRow).where(AcknowledgedRow.tenant_id == tenant.id)
            )
        }
        applied = {
            row.id: row.data
            for table in (User, Group)
            for row in session.scalars(select(table).where(table.tenant_id == tenant.id))
        }
    assert applied == acknowledged


def assert_reads_answer(services: Services, tenant: TenantRef, ids: dict[str, list[str]]) -> None:
    for type_name, resource_ids in ids.items():
        services.reads.search(tenant, type_name, SearchQuery())
        for resource_id in resource_ids[:3]:
            try:
                services.reads.get(tenant, type_name, resource_id)
            except ScimError as ex:
                assert ex.status == 404


@pytest.fixture
def tenant_names() -> list[int]:
    return [0]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_acknowledged_write_applies(
    services: Services, tenant_names: list[int], data: st.DataObject
) -> None:
    tenant_names[0] += 1  # a fresh tenant per example: nothing carries over between them
    tenant = services.tenant(f"property-{tenant_names[0]}")
    ids: dict[str, list[str]] = {
        "User": [services.user(tenant, "seed-user")],
        "Group": [],
    }
    ids["Group"].append(services.group(tenant, "seed-group", ids["User"]))
    for _ in range(data.draw(st.integers(1, MAX_WRITES))):
        one_write(data.draw, services, tenant, ids)
    assert_everything_applied(services, tenant)
    assert_reads_answer(services, tenant, ids)
