"""The operator view's read model (pipeline/services/operations.py), on SQLite and PostgreSQL:
each status a resource can be in, search by each key, the history in words, replay and discard
of dead letters, and the per-tenant figures including the IdP and the 429s the API saw.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from falcon import testing
from sqlalchemy import insert, select, update

from scimflow.api.wsgi import build_app
from scimflow.pipeline.errors import InvalidValue, NotFound
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.services.operations import Operations
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.traffic import TrafficRecorder
from scimflow.pipeline.services.webhooks import Webhooks
from scimflow.pipeline.settings import PasswordPolicy, Settings
from scimflow.pipeline.store import tenants
from scimflow.pipeline.store.dead_letters import AlreadySettled
from scimflow.pipeline.store.models import (
    AcknowledgedRow,
    LoginDecision,
    OutboxEvent,
    WebhookAttempt,
    WebhookEndpoint,
)
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import USER_SCHEMA, RecordingDispatcher, Services
from tests.integration.test_drain import (
    FAR_FUTURE,
    ManualClock,
    add_members,
    delete_user,
    make_not_due,
    members_of,
    patch_user,
)
from tests.integration.test_poison import journal_poison

RETRY = RetryPolicy(base_seconds=1, max_seconds=4, limit=2)


class World:
    """One tenant holding a resource in each status, and the worker that put them there."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.clock = ManualClock()
        self.worker = Drainer(services.sessions, default_protocol(), retry=RETRY,
                              clock=self.clock)
        self.ops = Operations(services.sessions, services.dispatcher, clock=self.clock)
        self.tenant = services.tenant("acme")

    def user(self, name: str, **attributes: Any) -> str:
        return self.services.user(self.tenant, name, **attributes)

    def drain(self, times: int = 1) -> None:
        for _ in range(times):
            self.worker.drain()
            self.clock.advance(60)  # past any backoff of RETRY

    def status_of(self, name: str) -> str:
        rows = [row for row in self.ops.directory("acme", name).rows if row.name == name]
        assert len(rows) == 1, rows
        return rows[0].status


@pytest.fixture
def world(services: Services) -> World:
    return World(services)


def test_each_status_of_a_resource(services: Services) -> None:
    world = World(services)
    ann = world.user("ann", externalId="EXT-ann", emails=[{"value": "Ann@Example.com"}])
    bob = world.user("bob")
    dave = world.user("dave")
    staff = services.group(world.tenant, "staff", [ann])
    waiters = services.group(world.tenant, "waiters")
    world.drain()
    patch_user(services, world.tenant, bob, active=False)
    delete_user(services, world.tenant, dave)
    world.drain()
    ghost = world.user("ghost")
    make_not_due(services, ghost, FAR_FUTURE)  # its create never lands in time
    add_members(services, world.tenant, waiters, [ghost])
    world.drain()  # the membership waits for ghost
    carl = world.user("carl")  # acknowledged, not yet applied

    assert world.status_of("ann") == "active"
    assert world.status_of("bob") == "inactive"
    assert world.status_of("carl") == "pending"
    assert world.status_of("waiters") == "waiting"
    waiting = world.ops.trace("acme", waiters).history[-1]
    assert waiting.waited_for == (ghost,) and waiting.status == "pending"
    deleted = world.ops.trace("acme", dave)
    assert deleted.resource.status == "deleted" and deleted.resource.name == "dave"
    assert [line.summary for line in deleted.history] == ["created", "deleted"]

    world.drain(RETRY.limit)  # the membership exhausts its budget
    assert world.status_of("waiters") == "dead-lettered"
    assert world.status_of("staff") == "active"
    staff_row = world.ops.trace("acme", "staff").resource
    assert staff_row.resource_id == staff and staff_row.memberships == ("1 members",)
    assert world.ops.trace("acme", "ann").resource.memberships == ("staff",)
    assert {carl, ghost} <= {r.resource_id for r in world.ops.directory("acme").rows}


def test_search_by_each_key_is_a_case_insensitive_prefix(services: Services) -> None:
    world = World(services)
    ann = world.user("Ann.Lee", externalId="EXT-42", emails=[{"value": "ann@example.com"}])
    world.user("bob", emails=[{"value": "robert@example.org"}])
    group = services.group(world.tenant, "Engineering")
    services.drain()

    def found(query: str, resource_type: Any = None) -> set[str]:
        return {r.resource_id for r in world.ops.directory("acme", query, resource_type).rows}

    assert found("ann.") == {ann}  # userName
    assert found("ext-4") == {ann}  # externalId
    assert found("ANN@EXA") == {ann}  # email
    assert found("engin") == {group}  # displayName
    assert found("engin", "User") == set()
    assert found("100%") == set() and found("_") == set()  # wildcards are literal
    page = world.ops.directory("acme", "", limit=2)  # no query: the newest first
    assert [row.name for row in page.rows] == ["Engineering", "bob"] and page.truncated
    assert page.rows[1].emails == ("robert@example.org",)
    assert [r.name for r in world.ops.directory("acme", "", "User").rows] == ["bob", "Ann.Lee"]
    assert not world.ops.directory("acme", "", "User").truncated
    assert found("robert") == set()  # an email is searched by a query holding its @
    with pytest.raises(InvalidValue):
        world.ops.directory("acme", "", limit=0)
    with pytest.raises(InvalidValue):
        world.ops.directory("acme", "a\x00b")
    with pytest.raises(NotFound):
        world.ops.directory("nobody")


def test_history_says_what_the_idp_did(services: Services) -> None:
    world = World(services)
    ann, bob, cat, dan = (world.user(name) for name in ("ann", "bob", "cat", "dan"))
    group = services.group(world.tenant, "staff", [ann])
    add_members(services, world.tenant, group, [bob, cat, dan])
    body = patch_body({"op": "remove", "path": f'members[value eq "{ann}"]'},
                      {"op": "add", "path": "members", "value": [{"value": ann}]},
                      {"op": "replace", "path": "displayName", "value": "crew"})
    services.writes.patch(world.tenant, "Group", group, body, if_match=None, request_id="r-9")
    services.writes.patch(world.tenant, "User", ann,
                          {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "replace", "value": {"active": False}}]},
                          if_match=None, request_id="r-10")
    services.writes.replace(world.tenant, "User", bob,
                            {"schemas": [USER_SCHEMA], "userName": "bob", "active": False},
                            if_match=None, request_id="r-11")
    services.drain()

    group_history = world.ops.trace("acme", "crew").history
    assert [line.summary for line in group_history] == [
        "created", "added 3 members", 'added 1 member, removed 1, set displayName="crew"']
    assert group_history[-1].request_id == "r-9" and group_history[-1].applied_at is not None
    assert [h.summary for h in world.ops.trace("acme", "ann").history] == [
        "created", "set active=false"]
    assert [h.summary for h in world.ops.trace("acme", bob).history] == [
        "created", "replaced with active=false"]
    trace = world.ops.trace("acme", "ann")
    assert trace.resource.status == "inactive" and trace.logins == ()
    assert [e.type for e in trace.events] and all(e.delivery == "no endpoint"
                                                  for e in trace.events)
    with pytest.raises(NotFound):
        world.ops.trace("acme", "nobody")


def dead_letter_of_a_missing_member(world: World) -> tuple[str, str]:
    group = world.services.group(world.tenant, "waiters")
    world.drain()
    ghost = world.user("ghost")
    make_not_due(world.services, ghost, FAR_FUTURE)
    add_members(world.services, world.tenant, group, [ghost])
    world.drain(RETRY.limit + 1)
    return group, ghost


def test_replay_applies_after_the_drain_and_cannot_run_twice(services: Services) -> None:
    world = World(services)
    group, ghost = dead_letter_of_a_missing_member(world)
    [letter] = world.ops.dead_letters("acme")
    assert letter.resource_id == group and letter.resource_name == "waiters"
    assert letter.summary == "added 1 member" and ghost in letter.reason
    assert letter.settled is None
    assert world.ops.tenant("acme").dead_letters == 1

    make_not_due(services, ghost, None)
    services.dispatcher.rings.clear()
    replayed = world.ops.replay(letter.id)
    assert replayed.settled == "replayed" and replayed.settled_at is not None
    assert services.dispatcher.rings == [(world.tenant.id, False)]
    assert world.status_of("waiters") == "pending"
    world.drain()
    assert members_of(services, world.tenant, group) == {ghost}
    assert world.status_of("waiters") == "active"
    assert world.ops.dead_letters() == []
    assert [d.settled for d in world.ops.dead_letters(include_settled=True)] == ["replayed"]
    with pytest.raises(AlreadySettled, match="already replayed"):
        world.ops.replay(letter.id)
    with pytest.raises(AlreadySettled):
        world.ops.discard(letter.id)
    with pytest.raises(NotFound):
        world.ops.replay(letter.id + 1000)


def test_discard_settles_without_applying(services: Services) -> None:
    world = World(services)
    group = services.group(world.tenant, "staff")
    services.drain()
    journal_poison(services, world.tenant, group)
    world.drain(RETRY.limit + 1)
    [letter] = world.ops.dead_letters("acme")
    assert world.ops.trace("acme", group).history[-1].dead_letter_id == letter.id

    discarded = world.ops.discard(letter.id)
    assert discarded.settled == "discarded"
    assert world.ops.dead_letters("acme") == []
    assert world.ops.tenant("acme").dead_letters == 0
    assert world.status_of("staff") == "active"
    assert world.ops.trace("acme", group).history[-1].dead_letter_settled
    with pytest.raises(AlreadySettled, match="discarded"):
        world.ops.replay(letter.id)


def test_tenant_figures(services: Services) -> None:
    world = World(services)
    other = services.tenant("beta")
    users = [world.user(f"user{i}") for i in range(4)]
    world.worker.drain()
    patch_user(services, world.tenant, users[0], active=False)  # a deprovisioning entry
    world.clock.advance(3)
    world.worker.drain()
    services.user(other, "waiting")

    acme, beta = world.ops.tenants()
    assert (acme.name, beta.name) == ("acme", "beta")
    assert acme.backlog == 0 and beta.backlog == 1
    assert beta.oldest_pending_seconds is not None and acme.oldest_pending_seconds is None
    assert acme.drain_rate == pytest.approx(5 / 60, abs=0.01)
    assert acme.last_applied_at == world.clock.now and beta.last_applied_at is None
    assert acme.last_write_at is not None and beta.last_write_at is not None
    assert acme.deprovision_p50_seconds is not None and acme.deprovision_p50_seconds > 0
    assert beta.deprovision_p99_seconds is None
    world.clock.advance(120)
    assert world.ops.tenant(world.tenant.id).drain_rate == 0
    assert world.ops.tenant("acme").idp_dialect is None
    world.user("later")  # acknowledged after beta's: each tenant's own oldest entry counts
    acme, beta = world.ops.tenants()
    assert acme.backlog == 1 and acme.oldest_pending_seconds is not None
    assert beta.oldest_pending_seconds is not None
    assert acme.oldest_pending_seconds < beta.oldest_pending_seconds


def test_the_idp_and_the_429s_the_api_saw_are_recorded(services: Services) -> None:
    world = World(services)
    recorder = TrafficRecorder(services.sessions, flush_seconds=3600, clock=world.clock)
    recorder.observe(world.tenant.id, "Okta SCIM Client 1.0.0", refused=False)
    for _ in range(3):
        recorder.observe(world.tenant.id, "Okta SCIM Client 1.0.0", refused=True)
    recorder.flush()
    world.clock.advance(61)
    recorder.observe(world.tenant.id, "Okta SCIM Client 1.0.0", refused=True)
    recorder.flush()
    figures = world.ops.tenant("acme")
    assert figures.idp_dialect == "Okta" and figures.refused_last_hour == 4
    world.clock.advance(timedelta(hours=1).total_seconds())
    assert world.ops.tenant("acme").refused_last_hour == 1  # the older minute has passed

    recorder.observe(world.tenant.id, "Microsoft.Identity.Provisioning", refused=False)
    recorder.flush()
    assert world.ops.tenant("acme").idp_dialect == "Microsoft Entra ID"


def test_a_tenant_deleted_before_the_flush_is_skipped(services: Services) -> None:
    world = World(services)
    recorder = TrafficRecorder(services.sessions, flush_seconds=3600, clock=world.clock)
    recorder.observe(world.tenant.id, "OneLogin SCIM", refused=True)
    with services.sessions.begin() as session:
        tenants.delete_tenant(session, TenantRef(world.tenant.id, "acme"))
    recorder.flush()  # no error, no orphan rows
    assert world.ops.tenants() == []


def test_observations_are_written_by_the_timer_without_another_request(
    services: Services,
) -> None:
    world = World(services)
    recorder = TrafficRecorder(services.sessions, flush_seconds=0.05, clock=world.clock)
    recorder.observe(world.tenant.id, "Google-Apps-Provisioning", refused=True)
    deadline = time.monotonic() + 10
    while world.ops.tenant("acme").refused_last_hour == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.ops.tenant("acme").idp_dialect == "Google Workspace"
    assert world.ops.tenant("acme").refused_last_hour == 1


def test_events_logins_and_webhook_deliveries(services: Services) -> None:
    world = World(services)
    added = Webhooks(services.sessions, allow_private=True).add("acme", "http://127.0.0.1:9/a")
    Webhooks(services.sessions, allow_private=True).add("acme", "http://127.0.0.1:9/b")
    ann = world.user("ann")
    services.drain()
    with services.sessions.begin() as session:
        session.execute(update(AcknowledgedRow).where(AcknowledgedRow.id == ann)
                        .values(source="jit"))
        position = session.scalars(select(OutboxEvent.id)
                                   .where(OutboxEvent.resource_id == ann)).one()
        event_id = session.scalars(select(OutboxEvent.event_id)
                                   .where(OutboxEvent.id == position)).one()
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == added.endpoint.id)
                        .values(cursor=position))
        session.execute(insert(LoginDecision).values(
            tenant_id=world.tenant.id, user_id=ann, issuer="https://idp.example", subject="s-1",
            policy="jit", decision="allow", reason="linked", action="created",
            request_id="login-1", created_at=world.clock.now))
        session.execute(insert(WebhookAttempt), [
            {"endpoint_id": added.endpoint.id, "event_position": position, "event_id": event_id,
             "attempted_at": world.clock.now, "status_code": 503, "latency_ms": 12.5,
             "error": None},
            {"endpoint_id": added.endpoint.id, "event_position": position, "event_id": event_id,
             "attempted_at": world.clock.now, "status_code": 204, "latency_ms": 8.0,
             "error": None},
        ])

    trace = world.ops.trace("acme", "ann")
    assert trace.resource.source == "jit"
    [event] = trace.events
    assert event.event_id == event_id and event.delivery == "waiting (1 of 2 endpoints passed it)"
    [login] = trace.logins
    assert (login.issuer, login.subject, login.decision, login.action) == (
        "https://idp.example", "s-1", "allow", "created")
    newest, oldest = world.ops.deliveries("acme")
    assert (newest.outcome, newest.status_code, newest.duration_ms) == ("delivered", 204, 8.0)
    assert oldest.outcome == "refused (HTTP 503)" and newest.tenant_name == "acme"
    assert newest.endpoint_url == "http://127.0.0.1:9/a" and newest.event_id == event_id
    assert world.ops.deliveries(limit=1) == [newest]
    with pytest.raises(NotFound):
        world.ops.deliveries("nobody")


def test_the_production_api_records_the_idp_and_its_429s(
    services: Services, database_url: str
) -> None:
    """Through `build_app`: Okta's agent is recognised and a refused write counted, written
    by the recorder's own timer (a few seconds later), never by the request."""
    settings = Settings(database_url=database_url, password_policy=PasswordPolicy.IGNORE,
                        token_cache_seconds=0.0, tenant_backlog_limit=1)
    client = testing.TestClient(build_app(settings, RecordingDispatcher()))
    issued = Tenancy(services.sessions).create("acme")
    headers = {"Authorization": f"Bearer {issued.secret}",
               "User-Agent": "Okta SCIM Client 1.0.0"}

    def post(user_name: str) -> int:
        body = {"schemas": [USER_SCHEMA], "userName": user_name}
        return client.simulate_post("/scim/v2/Users", headers=headers, json=body).status_code

    assert post("ann") == 201
    time.sleep(0.6)  # admission's backlog snapshot is refreshed every half second
    assert post("bob") == 429
    client.simulate_get("/scim/v2/Users", headers={"User-Agent": "Okta SCIM Client 1.0.0"})
    ops = Operations(services.sessions, RecordingDispatcher())
    deadline = time.monotonic() + 15
    while ops.tenant("acme").refused_last_hour == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    figures = ops.tenant("acme")
    assert (figures.idp_dialect, figures.refused_last_hour) == ("Okta", 1)
