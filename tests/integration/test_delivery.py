"""Webhook delivery against a real HTTP receiver, on both databases: the events a real drain
wrote, signed, in order per resource, at least once; backoff, Retry-After, 410 and the
failing-too-long rule; every attempt recorded; subscriptions filtering.

The Deliverer runs in the test's thread with a manual clock, so backoffs are stepped through
instead of waited for (tests/system/test_webhooks.py runs the real events worker).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from scimflow.pipeline.events.sets import verify_set
from scimflow.pipeline.events.signing import new_secret, verify
from scimflow.pipeline.events.transport import WebhookTransport
from scimflow.pipeline.services.delivery import Deliverer, DeliveryPolicy
from scimflow.pipeline.services.set_signing import SetSigner
from scimflow.pipeline.store import webhook_delivery
from scimflow.pipeline.store.models import OutboxEvent, WebhookAttempt, WebhookEndpoint
from scimflow.pipeline.store.tenants import TenantRef
from scimflow.pipeline.store.webhook_delivery import Move
from tests.integration.conftest import Services
from tests.support.receiver import (
    Answer,
    Receiver,
    assert_in_order_per_resource,
    first_arrivals,
    running_receiver,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class ManualClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def deliverer(services: Services, clock: ManualClock, **policy: Any) -> Deliverer:
    transport = WebhookTransport(timeout=policy.pop("timeout_seconds", 5.0), allow_private=True)
    return Deliverer(services.sessions, transport, clock=clock,
                     policy=DeliveryPolicy(**{"concurrency": 4, **policy}))


def endpoint(services: Services, tenant: TenantRef, url: str, *,
             events: list[str] | None = None, format: str = "json") -> tuple[str, str]:
    secret = new_secret()
    endpoint_id = f"we_{tenant.id[:8]}{len(url)}"
    with services.sessions.begin() as session:
        session.add(WebhookEndpoint(
            id=endpoint_id, tenant_id=tenant.id, url=url, event_types=events or ["*"],
            format=format, secrets=[{"secret": secret, "expires_at": None}],
            created_at=START, cursor=0, failures=0,
        ))
    return endpoint_id, secret


def state_of(services: Services, endpoint_id: str) -> WebhookEndpoint:
    with services.sessions() as session:
        found = session.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        session.expunge(found)
        return found


def outbox_ids(services: Services) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxEvent.event_id).order_by(OutboxEvent.id)))



def sync(services: Services, tenant: TenantRef, users: int) -> list[str]:
    """Create users, rename each twice, deactivate every third one; apply it all."""
    ids = [services.user(tenant, f"user{n}") for n in range(users)]
    services.drain()
    for user_id, round_ in itertools.product(ids, range(2)):
        patch(services, tenant, user_id, {"op": "replace", "path": "title",
                                          "value": f"title {round_}"})
    for user_id in ids[::3]:
        patch(services, tenant, user_id, {"op": "replace", "path": "active", "value": False})
    services.drain()
    return ids


def patch(services: Services, tenant: TenantRef, user_id: str, operation: dict[str, Any]) -> None:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [operation]}
    services.writes.patch(tenant, "User", user_id, body, if_match=None, request_id="test")


def test_every_event_is_delivered_once_signed_and_in_order(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, secret = endpoint(services, acme, receiver.url())
    ids = sync(services, acme, 40)

    report = deliverer(services, clock).deliver(endpoint_id)

    received = receiver.snapshot()
    assert report.delivered == len(received) == len(outbox_ids(services)) == 40 * 3 + 14
    assert [r.headers["webhook-id"] for r in received] != []
    assert {r.headers["webhook-id"] for r in received} == set(outbox_ids(services))
    for request in received:
        verify(request.body, request.headers, secret, now=int(clock().timestamp()))
        assert request.headers["webhook-id"] == request.document["id"]
        assert request.headers["content-type"] == "application/json"
    assert_in_order_per_resource([r.document for r in received])
    deprovisioned = [d for d in first_arrivals(received) if d["type"] == "user.deprovisioned"]
    assert {d["resource"]["id"] for d in deprovisioned} == set(ids[::3])
    assert all(d["changed_attributes"] == ["active"] for d in deprovisioned)
    assert state_of(services, endpoint_id).cursor == max_position(services)
    assert attempts(services, endpoint_id) == len(received)
    # Nothing new: nothing sent again.
    assert deliverer(services, clock).deliver(endpoint_id).delivered == 0


def max_position(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc())) or 0)


def attempts(services: Services, endpoint_id: str) -> int:
    with services.sessions() as session:
        return len(session.scalars(
            select(WebhookAttempt.id).where(WebhookAttempt.endpoint_id == endpoint_id)
        ).all())


def test_a_failing_receiver_backs_the_endpoint_off_and_loses_nothing(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, receiver.url())
    sync(services, acme, 20)
    answers = itertools.chain([Answer()] * 15, itertools.repeat(Answer(500)))
    receiver.behaviour = lambda _: next(answers)
    worker = deliverer(services, clock)

    first = worker.deliver(endpoint_id)

    state = state_of(services, endpoint_id)
    assert first.failed == 1 and state.failures == 1 and state.failing_since == clock()
    assert state.next_attempt_at is not None and state.next_attempt_at > clock()
    assert 0 < state.cursor < max_position(services)
    # Backing off: a delivery now tries nothing.
    assert worker.deliver(endpoint_id).skipped
    receiver.behaviour = lambda _: Answer(503)
    clock.advance(3600)
    worker.deliver(endpoint_id)
    assert state_of(services, endpoint_id).failures == 2
    receiver.behaviour = lambda _: Answer()
    clock.advance(3600)
    worker.deliver(endpoint_id)

    healed = state_of(services, endpoint_id)
    assert healed.cursor == max_position(services) and healed.failures == 0
    assert healed.failing_since is None and healed.next_attempt_at is None
    documents = first_arrivals(receiver.snapshot())
    assert [d["id"] for d in documents] != [] and len(documents) == len(outbox_ids(services))
    assert_in_order_per_resource(documents)
    with services.sessions() as session:
        statuses = set(session.scalars(select(WebhookAttempt.status_code)))
    assert {200, 500, 503} <= statuses


def test_retry_after_sets_the_next_attempt(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, receiver.url())
    services.user(acme, "ann")
    services.drain()
    receiver.behaviour = lambda _: Answer(429, {"Retry-After": "120"})

    deliverer(services, clock).deliver(endpoint_id)

    assert state_of(services, endpoint_id).next_attempt_at == clock() + timedelta(seconds=120)


def test_410_gone_disables_the_endpoint(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, receiver.url())
    services.user(acme, "ann")
    services.drain()
    receiver.behaviour = lambda _: Answer(410)

    report = deliverer(services, clock).deliver(endpoint_id)

    state = state_of(services, endpoint_id)
    assert report.disabled == state.disabled_reason == "the endpoint answered 410 Gone"
    assert state.disabled_at == clock() and state.lease_until is None
    assert deliverer(services, clock).deliver(endpoint_id).skipped


def test_an_endpoint_failing_for_the_configured_hours_is_disabled(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, receiver.url())
    services.user(acme, "ann")
    services.drain()
    receiver.behaviour = lambda _: Answer(500)
    worker = deliverer(services, clock, disable_after=timedelta(hours=2))

    for _ in range(20):
        if worker.deliver(endpoint_id).disabled:
            break
        clock.advance(1800)

    state = state_of(services, endpoint_id)
    assert state.disabled_reason is not None
    assert state.disabled_reason.startswith("failing for 2 hours")
    assert "HTTP 500" in state.disabled_reason
    assert state.failing_since is not None
    assert clock() - state.failing_since >= timedelta(hours=2)


def test_an_endpoint_gets_only_the_events_it_subscribed_to(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, receiver.url(), events=["user.deprovisioned"])
    ids = sync(services, acme, 9)

    deliverer(services, clock).deliver(endpoint_id)

    documents = [r.document for r in receiver.snapshot()]
    assert [d["type"] for d in documents] == ["user.deprovisioned"] * 3
    assert {d["resource"]["id"] for d in documents} == set(ids[::3])
    assert state_of(services, endpoint_id).cursor == max_position(services)


def test_another_tenants_events_are_not_delivered(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    endpoint_id, _ = endpoint(services, acme, receiver.url())
    services.user(acme, "ann")
    services.user(globex, "bob")
    services.drain()

    deliverer(services, clock).deliver(endpoint_id)

    assert [r.document["tenant"] for r in receiver.snapshot()] == [acme.id]


def test_a_replay_while_a_task_holds_the_endpoint_is_not_written_over(
    services: Services, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, "http://127.0.0.1:9/")
    with services.sessions.begin() as session:
        session.get_one(WebhookEndpoint, endpoint_id).cursor = 40
        held = webhook_delivery.lease(session, endpoint_id, now=clock(),
                                      until=clock() + timedelta(minutes=1))
    assert held is not None and held.cursor == 40
    with services.sessions.begin() as session:  # `scimflow webhook replay`, meanwhile
        session.get_one(WebhookEndpoint, endpoint_id).cursor = 10

    with services.sessions.begin() as session:
        moved = webhook_delivery.advance(session, Move(endpoint_id, held.token, 40, 55),
                                         lease_until=clock())

    assert not moved and state_of(services, endpoint_id).cursor == 10


def test_a_task_whose_lease_ran_out_writes_nothing_over_its_successor(
    services: Services, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, "http://127.0.0.1:9/")
    with services.sessions.begin() as session:
        first = webhook_delivery.lease(session, endpoint_id, now=clock(),
                                       until=clock() + timedelta(seconds=30))
    clock.advance(60)  # the first holder is slow (or gone): its lease runs out
    with services.sessions.begin() as session:
        second = webhook_delivery.lease(session, endpoint_id, now=clock(),
                                        until=clock() + timedelta(seconds=30))
    assert first is not None and second is not None and first.token != second.token

    with services.sessions.begin() as session:
        webhook_delivery.release(session, endpoint_id, first.token)
        late = webhook_delivery.advance(session, Move(endpoint_id, first.token, 0, 7),
                                        lease_until=clock() + timedelta(minutes=5))

    state = state_of(services, endpoint_id)
    assert not late and state.cursor == 0
    assert state.lease_token == second.token and state.lease_until is not None
    with services.sessions.begin() as session:
        assert webhook_delivery.lease(session, endpoint_id, now=clock(),
                                      until=clock()) is None  # still the second's


def test_a_set_endpoint_receives_signed_security_event_tokens(
    services: Services, receiver: Receiver, clock: ManualClock
) -> None:
    acme = services.tenant("acme")
    endpoint_id, _ = endpoint(services, acme, receiver.url(), format="set")
    user_id = services.user(acme, "ann")
    services.drain()
    patch(services, acme, user_id, {"op": "replace", "path": "active", "value": False})
    services.drain()
    signer = SetSigner(services.sessions, issuer="https://scim.example")
    transport = WebhookTransport(timeout=5.0, allow_private=True)

    Deliverer(services.sessions, transport, clock=clock, signer=signer).deliver(endpoint_id)

    created, deactivated = receiver.snapshot()
    assert created.headers["content-type"] == "application/secevent+jwt"
    claims = [verify_set(r.body.decode(), signer.jwks(), audience=receiver.url())
              for r in (created, deactivated)]
    assert claims[0]["iss"] == "https://scim.example"
    assert claims[0]["sub_id"]["uri"] == f"/Users/{user_id}"
    assert "urn:ietf:params:scim:event:prov:create:full" in claims[0]["events"]
    assert "urn:ietf:params:scim:event:prov:deactivate" in claims[1]["events"]
    assert [c["jti"] for c in claims] == outbox_ids(services)


def test_a_slow_endpoint_does_not_hold_up_another_delivered_at_the_same_time(
    services: Services, receiver: Receiver
) -> None:
    """Two tasks of one events worker (two threads, one Deliverer): the slow receiver's lanes
    are its own; the other endpoint's events go out at once."""
    acme, globex = services.tenant("acme"), services.tenant("globex")
    slow_id, _ = endpoint(services, acme, receiver.url("/slow"))
    fast_id, _ = endpoint(services, globex, receiver.url("/fast"))
    for n in range(12):
        services.user(acme, f"slow{n}")
    services.user(globex, "ann")
    services.drain()
    receiver.behaviour = lambda request: Answer(delay=2.0 if request.path == "/slow" else 0)
    shared = Deliverer(services.sessions, WebhookTransport(timeout=5.0, allow_private=True),
                       policy=DeliveryPolicy(concurrency=4))
    slow = threading.Thread(target=shared.deliver, args=(slow_id,))
    slow.start()
    receiver.wait_for(lambda got: any(r.path == "/slow" for r in got), timeout=10)

    started = time.monotonic()
    report = shared.deliver(fast_id)

    assert report.delivered == 1 and time.monotonic() - started < 1.0
    slow.join(timeout=30)
