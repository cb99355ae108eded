"""Webhooks end to end: an IdP sync over HTTP, real Celery workers applying it, the real events
worker delivering it to a real HTTP receiver in this test.

- A 2,000-user + 50-group Okta sync: the receiver ends up with exactly the directory that
  PostgreSQL holds (users' attributes and active flags, groups' members rebuilt from
  member_added/removed), every signature verified with the secret `webhook add` printed,
  per-resource order kept, repeats recognisable by `webhook-id`.
- Faults: the receiver answers 500 for a minute and recovers; the events worker is SIGKILLed
  mid-delivery; a 410 disables the endpoint; a receiver slower than the timeout does not
  delay another tenant's deliveries.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scimflow.pipeline.events.signing import verify
from tests.support.receiver import (
    Answer,
    Received,
    Receiver,
    assert_in_order_per_resource,
    first_arrivals,
    running_receiver,
)
from tests.support.services import require_postgres, require_redis
from tests.system.idp import OktaSimulator, patch_body, plan_directory
from tests.system.stack import Stack, running_stack

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENV = {
    # The receiver is this test, on 127.0.0.1.
    "SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "SCIMFLOW_WEBHOOK_SWEEP_SECONDS": "1",
    "SCIMFLOW_WEBHOOK_RETRY_BASE_SECONDS": "1",
    "SCIMFLOW_WEBHOOK_RETRY_MAX_SECONDS": "8",
    "SCIMFLOW_WEBHOOK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def events_stack(tmp_path: Path) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    with running_stack(tmp_path, redis_db=5, extra_env=ENV) as running:
        running.start_events_worker()
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def add_endpoint(stack: Stack, tenant: str, url: str) -> dict[str, Any]:
    added: dict[str, Any] = json.loads(stack.run(["scimflow", "webhook", "add", tenant, url,
                                                  "--json"]))
    return added


def outbox_ids(stack: Stack, tenant_id: str) -> set[str]:
    rows = stack.sql("SELECT event_id FROM outbox WHERE tenant_id = :t", t=tenant_id)
    return {row[0] for row in rows}


def wait_for_every_event(stack: Stack, receiver: Receiver, tenant_id: str,
                         timeout: float = 240) -> list[Received]:
    stack.wait_until_applied(timeout=timeout)
    expected = outbox_ids(stack, tenant_id)
    receiver.wait_for(
        lambda got: expected <= {r.headers["webhook-id"] for r in got}, timeout=timeout
    )
    return receiver.snapshot()


def assert_signed_and_in_order(received: list[Received], secret: str) -> list[dict[str, Any]]:
    for request in received:
        # The receiver checks as it receives: the time of arrival, within 5 minutes.
        verify(request.body, request.headers, secret, now=int(time.time()))
    documents = first_arrivals(received)
    assert_in_order_per_resource(documents)
    return documents


# --- the sync --------------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_a_2000_user_sync_reaches_the_receiver_exactly_as_the_directory_ended(
    events_stack: Stack, receiver: Receiver
) -> None:
    stack = events_stack
    tenant = stack.create_tenant("okta")
    endpoint = add_endpoint(stack, "okta", receiver.url())
    plan = plan_directory(users=2000, groups=50, members_per_group=20, domain="okta.example")
    with stack.client(tenant["token"], timeout=60) as http:
        OktaSimulator(http).initial_sync(plan, churn=frozenset(range(7, 2000, 20)))

    received = wait_for_every_event(stack, receiver, tenant["tenant_id"])

    documents = assert_signed_and_in_order(received, endpoint["secret"])
    assert len(documents) == len(outbox_ids(stack, tenant["tenant_id"]))
    assert_users_as_stored(stack, tenant["tenant_id"], documents)
    assert_memberships_as_stored(stack, tenant["tenant_id"], documents)
    repeats = len(received) - len(documents)
    print(f"\nreceived {len(received)} deliveries of {len(documents)} events "
          f"({repeats} repeats, each known by its webhook-id)")


def assert_users_as_stored(stack: Stack, tenant_id: str, documents: list[dict[str, Any]]) -> None:
    last: dict[str, dict[str, Any]] = {}
    for document in documents:
        if document["type"].startswith("user.") and document["data"] is not None:
            last[document["resource"]["id"]] = document
    rows = stack.sql("SELECT id, data, version, active FROM users WHERE tenant_id = :t",
                     t=tenant_id)
    assert len(rows) == 2000 and set(last) == {row.id for row in rows}
    for row in rows:
        seen = last[row.id]
        assert seen["resource"]["version"] == row.version, row.id
        assert seen["data"]["active"] is row.active, row.id
        for name in ("userName", "name", "emails", "displayName", "externalId"):
            assert seen["data"].get(name) == row.data.get(name), (row.id, name)
    assert sum(1 for row in rows if not row.active) == 100


def assert_memberships_as_stored(
    stack: Stack, tenant_id: str, documents: list[dict[str, Any]]
) -> None:
    members: dict[str, set[str]] = defaultdict(set)
    for document in documents:
        group_id = document["resource"]["id"]
        if document["type"] == "group.member_added":
            members[group_id].add(document["member"]["value"])
        elif document["type"] == "group.member_removed":
            members[group_id].discard(document["member"]["value"])
    stored: dict[str, set[str]] = defaultdict(set)
    for group_id, member_id in stack.sql(
        "SELECT group_id, member_id FROM memberships WHERE tenant_id = :t", t=tenant_id
    ):
        stored[group_id].add(member_id)
    assert len(stored) == 50
    assert {g: m for g, m in members.items() if m} == dict(stored)


# --- faults ----------------------------------------------------------------------------------


def provision(stack: Stack, token: str, count: int, prefix: str) -> list[str]:
    ids = []
    with stack.client(token) as http:
        for n in range(count):
            body = {"schemas": [USER_SCHEMA], "userName": f"{prefix}{n}@example.com"}
            response = http.post("/Users", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def deactivate(stack: Stack, token: str, user_ids: list[str]) -> None:
    body = patch_body({"op": "replace", "value": {"active": False}})
    with stack.client(token) as http:
        for user_id in user_ids:
            assert http.patch(f"/Users/{user_id}", json=body).status_code in (200, 204)


@pytest.mark.timeout(600)
def test_a_receiver_down_for_a_minute_loses_nothing(
    events_stack: Stack, receiver: Receiver
) -> None:
    stack = events_stack
    tenant = stack.create_tenant("acme")
    endpoint = add_endpoint(stack, "acme", receiver.url())
    recovers_at = time.monotonic() + 60
    receiver.behaviour = lambda _: Answer(500 if time.monotonic() < recovers_at else 200)
    ids = provision(stack, tenant["token"], 100, "down")
    deactivate(stack, tenant["token"], ids[::4])

    received = wait_for_every_event(stack, receiver, tenant["tenant_id"], timeout=300)

    assert time.monotonic() >= recovers_at
    documents = assert_signed_and_in_order(
        [r for r in received if r.at >= recovers_at], endpoint["secret"]
    )
    assert {d["id"] for d in documents} == outbox_ids(stack, tenant["tenant_id"])
    failed = stack.sql("SELECT count(*) FROM webhook_attempts WHERE endpoint_id = :e"
                       " AND status_code = 500", e=endpoint["id"])[0][0]
    delivered = stack.sql("SELECT count(*) FROM webhook_attempts WHERE endpoint_id = :e"
                          " AND status_code = 200", e=endpoint["id"])[0][0]
    assert failed >= 5 and delivered >= 125
    state = stack.sql("SELECT failures, disabled_at FROM webhook_endpoints WHERE id = :e",
                      e=endpoint["id"])[0]
    assert state.failures == 0 and state.disabled_at is None


@pytest.mark.timeout(600)
def test_an_events_worker_killed_mid_delivery_loses_nothing(
    events_stack: Stack, receiver: Receiver
) -> None:
    stack = events_stack
    tenant = stack.create_tenant("acme")
    endpoint = add_endpoint(stack, "acme", receiver.url())
    receiver.behaviour = lambda _: Answer(delay=0.02)  # slow enough to be caught mid-way
    provision(stack, tenant["token"], 300, "killed")
    receiver.wait_for(lambda got: len(got) >= 30, timeout=120)

    stack.kill("events")
    stack.start_events_worker("events2")
    received = wait_for_every_event(stack, receiver, tenant["tenant_id"], timeout=300)

    documents = assert_signed_and_in_order(received, endpoint["secret"])
    assert {d["id"] for d in documents} == outbox_ids(stack, tenant["tenant_id"])


@pytest.mark.timeout(300)
def test_410_gone_disables_the_endpoint(events_stack: Stack, receiver: Receiver) -> None:
    stack = events_stack
    tenant = stack.create_tenant("acme")
    endpoint = add_endpoint(stack, "acme", receiver.url())
    receiver.behaviour = lambda _: Answer(410)
    provision(stack, tenant["token"], 3, "gone")
    deadline = time.monotonic() + 60
    reason = None
    while reason is None and time.monotonic() < deadline:
        time.sleep(0.5)
        reason = stack.sql("SELECT disabled_reason FROM webhook_endpoints WHERE id = :e",
                           e=endpoint["id"])[0][0]
    assert reason == "the endpoint answered 410 Gone"
    listed = json.loads(stack.run(["scimflow", "webhook", "list", "acme", "--json"]))
    assert listed[0]["enabled"] is False


@pytest.mark.timeout(300)
def test_a_slow_receiver_does_not_delay_another_tenants_deliveries(events_stack: Stack) -> None:
    stack = events_stack
    slow, fast = stack.create_tenant("slow"), stack.create_tenant("fast")
    with running_receiver(lambda _: Answer(delay=5)) as sluggish, running_receiver() as quick:
        add_endpoint(stack, "slow", sluggish.url())
        add_endpoint(stack, "fast", quick.url())
        provision(stack, slow["token"], 20, "slow")
        sluggish.wait_for(lambda got: len(got) >= 1, timeout=60)

        latencies = []
        for n in range(10):
            sent = time.monotonic()
            user_id = provision(stack, fast["token"], 1, f"fast{n}-")[0]
            quick.wait_for(lambda got, uid=user_id: any(  # type: ignore[misc]
                r.document["resource"]["id"] == uid for r in got), timeout=30)
            latencies.append(time.monotonic() - sent)
        still_slow = threading.active_count()  # the slow endpoint is still timing out
    print(f"\nfast tenant's acknowledged write -> received: max {max(latencies):.2f}s "
          f"while the slow tenant's receiver times out")
    assert still_slow and max(latencies) < 2.0, latencies
