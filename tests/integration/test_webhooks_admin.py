"""Managing webhook endpoints (`services/webhooks.py`) on SQLite and PostgreSQL: the SSRF
refusals when an endpoint is added, where a new endpoint starts, secret rotation, replays by
time and by event id, enabling after a backoff, and the delivery attempts listed newest first.

Events are written with `outbox.append`, as the applying transaction writes them.
"""

from __future__ import annotations

import re
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.events.destinations import DestinationRefused
from scimflow.pipeline.events.model import new_event_id
from scimflow.pipeline.services.webhooks import (
    UnknownEndpoint,
    UnknownEvent,
    UnresolvableDestination,
    Webhooks,
)
from scimflow.pipeline.store import outbox, tenants
from scimflow.pipeline.store.db import make_sessions
from scimflow.pipeline.store.event_tables import WebhookAttempt, WebhookEndpoint
from scimflow.pipeline.store.tenants import TenantRef

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HINT = "set SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations"
PUBLIC_URL = "https://93.184.216.34/hooks/scim"

INTERNAL_DESTINATIONS = [
    ("http://127.0.0.1/", "webhook destination 127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data",
     "webhook destination 169.254.169.254 is a link-local address"),
    ("http://10.0.0.1/", "webhook destination 10.0.0.1 is a private address"),
    ("http://localhost/", "webhook destination localhost is a loopback address"),
]


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    sessions: sessionmaker[Session]
    clock: Clock
    acme: TenantRef
    globex: TenantRef

    def webhooks(self, *, allow_private: bool = False) -> Webhooks:
        return Webhooks(self.sessions, allow_private=allow_private, clock=self.clock)

    def events(self, tenant: TenantRef, *types: str, at: datetime | None = None) -> list[str]:
        """Append one event per type, written at `at` (default: now); their ids, in order."""
        ids = [new_event_id() for _ in types]
        rows = [_event_row(tenant, event_type, event_id, at or self.clock.now)
                for event_type, event_id in zip(types, ids, strict=True)]
        with self.sessions.begin() as session:
            outbox.append(session, rows)
        return ids

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        with self.sessions() as session:
            found = session.get(WebhookEndpoint, endpoint_id)
            assert found is not None
            return found


def _event_row(tenant: TenantRef, event_type: str, event_id: str, at: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "tenant_id": tenant.id, "event_type": event_type,
            "resource_type": event_type.partition(".")[0].title(), "resource_id": "r1",
            "journal_seq": 1, "payload": {"id": event_id, "type": event_type},
            "created_at": at}


@pytest.fixture
def world(db_engine: Engine) -> World:
    sessions = make_sessions(db_engine)
    with sessions.begin() as session:
        acme = tenants.create_tenant(session, "acme", now=START)
        globex = tenants.create_tenant(session, "globex", now=START)
    return World(sessions, Clock(), acme, globex)


# --- Adding, and the SSRF refusals --------------------------------------------------------------


def test_a_new_endpoint_starts_at_the_last_position_and_shows_its_secret_once(
    world: World,
) -> None:
    world.events(world.acme, "user.created", "user.updated", "group.created")
    added = world.webhooks().add("acme", PUBLIC_URL, events=["user.*"])

    endpoint = added.endpoint
    assert re.fullmatch(r"we_[0-9a-f]{24}", endpoint.id)
    assert added.secret.startswith("whsec_")
    assert (endpoint.tenant, endpoint.tenant_id, endpoint.url) == ("acme", world.acme.id,
                                                                    PUBLIC_URL)
    assert (endpoint.events, endpoint.format, endpoint.enabled) == (["user.*"], "json", True)
    assert (endpoint.cursor, endpoint.backlog, endpoint.failures) == (3, 0, 0)
    assert endpoint.created_at == START
    assert "secret" not in str(asdict(endpoint)) and added.secret not in str(asdict(endpoint))
    assert world.endpoint(endpoint.id).secrets == [{"secret": added.secret, "expires_at": None}]


def test_the_backlog_counts_the_tenants_subscribed_events_past_the_cursor(world: World) -> None:
    hooks = world.webhooks()
    users = hooks.add(world.acme.id, PUBLIC_URL, events=["user.*", "group.member_added"])
    everything = hooks.add("acme", PUBLIC_URL, format="set")
    world.events(world.acme, "user.created", "group.created", "group.member_added")
    world.events(world.globex, "user.created")

    listed = {endpoint.id: endpoint for endpoint in hooks.list("acme")}
    assert listed[users.endpoint.id].backlog == 2
    assert listed[everything.endpoint.id].backlog == 3
    assert listed[everything.endpoint.id].format == "set"
    assert hooks.list("globex") == []
    assert {endpoint.id for endpoint in hooks.list()} == set(listed)


@pytest.mark.parametrize(("url", "refusal"), INTERNAL_DESTINATIONS)
def test_internal_destinations_are_refused_unless_private_networks_are_allowed(
    world: World, url: str, refusal: str
) -> None:
    with pytest.raises(DestinationRefused) as refused:
        world.webhooks(allow_private=False).add("acme", url)
    assert str(refused.value) == f"{refusal}; {HINT}"
    assert world.webhooks().list() == []

    added = world.webhooks(allow_private=True).add("acme", url)
    assert [endpoint.url for endpoint in world.webhooks().list()] == [url]
    assert added.endpoint.enabled


def test_a_name_resolving_to_a_private_address_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        # The network of the test machine has no such name: answer it as an internal DNS would.
        if host == "hooks.corp.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(DestinationRefused, match=re.escape(
        f"webhook destination hooks.corp.example resolves to 10.1.2.3, a private address; {HINT}"
    )):
        world.webhooks().add("acme", "https://hooks.corp.example/scim")
    assert world.webhooks(allow_private=True).add("acme", "https://hooks.corp.example/scim")


def test_a_name_that_does_not_resolve_is_refused_as_a_likely_typo(world: World) -> None:
    unresolved = re.escape("nowhere.invalid does not resolve")
    with pytest.raises(UnresolvableDestination, match=unresolved):
        world.webhooks(allow_private=True).add("acme", "https://nowhere.invalid/hook")


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://93.184.216.34/", "must use http or https"),
    ("https://user:pw@93.184.216.34/", "must not carry credentials"),
])
def test_urls_of_the_wrong_form_are_refused_even_on_private_networks(
    world: World, url: str, reason: str
) -> None:
    with pytest.raises(DestinationRefused, match=reason):
        world.webhooks(allow_private=True).add("acme", url)


def test_unknown_tenant_bad_pattern_and_bad_format_are_refused_clearly(world: World) -> None:
    hooks = world.webhooks()
    with pytest.raises(NotFound, match="No tenant 'initech'"):
        hooks.add("initech", PUBLIC_URL)
    with pytest.raises(ValueError, match=re.escape("'users.*' names no event type; known types: ")):
        hooks.add("acme", PUBLIC_URL, events=["users.*"])
    with pytest.raises(ValueError, match="'xml' is not one of: json, set"):
        hooks.add("acme", PUBLIC_URL, format="xml")
    with pytest.raises(NotFound, match="No tenant 'initech'"):
        hooks.list("initech")
    assert hooks.list() == []


# --- Disabling, enabling, removing ---------------------------------------------------------------


def test_enable_clears_the_backoff_and_keeps_the_cursor(world: World) -> None:
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    world.events(world.acme, "user.created", "user.updated")
    with world.sessions.begin() as session:
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(
            failures=30, failing_since=START - timedelta(hours=25),
            next_attempt_at=START + timedelta(hours=1), disabled_at=START,
            disabled_reason="failing for 24 hours",
        ))
    disabled = hooks.list()[0]
    assert (disabled.enabled, disabled.disabled_reason, disabled.failures) == (
        False, "failing for 24 hours", 30)

    enabled = hooks.enable(endpoint_id)

    assert (enabled.enabled, enabled.disabled_at, enabled.disabled_reason) == (True, None, None)
    assert (enabled.failures, enabled.failing_since, enabled.next_attempt_at) == (0, None, None)
    assert (enabled.cursor, enabled.backlog) == (0, 2)


def test_disable_records_the_reason_and_the_time(world: World) -> None:
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    world.clock.now = START + timedelta(minutes=5)

    disabled = hooks.disable(endpoint_id, "receiver migrating")

    assert (disabled.enabled, disabled.disabled_reason) == (False, "receiver migrating")
    assert disabled.disabled_at == START + timedelta(minutes=5)
    assert hooks.disable(endpoint_id).disabled_reason == "disabled by an operator"


def test_remove_deletes_the_endpoint_and_its_attempts(world: World) -> None:
    hooks = world.webhooks()
    kept = hooks.add("acme", PUBLIC_URL).endpoint.id
    removed = hooks.add("acme", PUBLIC_URL).endpoint.id
    _record_attempts(world, removed, [START])
    _record_attempts(world, kept, [START])

    hooks.remove(removed)

    assert [endpoint.id for endpoint in hooks.list()] == [kept]
    with world.sessions() as session:
        owners = session.scalars(select(WebhookAttempt.endpoint_id)).all()
    assert owners == [kept]


@pytest.mark.parametrize("action", [
    lambda hooks: hooks.remove("we_missing"),
    lambda hooks: hooks.disable("we_missing"),
    lambda hooks: hooks.enable("we_missing"),
    lambda hooks: hooks.rotate_secret("we_missing"),
    lambda hooks: hooks.replay("we_missing", since=START),
    lambda hooks: hooks.deliveries("we_missing"),
])
def test_an_unknown_endpoint_is_a_clear_lookup_error(world: World, action: Any) -> None:
    with pytest.raises(UnknownEndpoint, match=re.escape(
        "No webhook endpoint 'we_missing' (`scimflow webhook list` shows them)."
    )):
        action(world.webhooks())


# --- Secrets -------------------------------------------------------------------------------------


def test_rotation_keeps_the_older_secret_signing_until_the_overlap_ends(world: World) -> None:
    hooks = world.webhooks()
    added = hooks.add("acme", PUBLIC_URL)
    endpoint_id, first = added.endpoint.id, added.secret

    second = hooks.rotate_secret(endpoint_id, overlap_hours=2)

    assert second.startswith("whsec_") and second != first
    overlap_end = (START + timedelta(hours=2)).isoformat()
    assert world.endpoint(endpoint_id).secrets == [
        {"secret": second, "expires_at": None},
        {"secret": first, "expires_at": overlap_end},
    ]
    # A second rotation within the overlap never extends the first secret's life.
    world.clock.now = START + timedelta(hours=1)
    third = hooks.rotate_secret(endpoint_id, overlap_hours=24)
    secrets = world.endpoint(endpoint_id).secrets
    assert secrets == [
        {"secret": third, "expires_at": None},
        {"secret": second, "expires_at": (START + timedelta(hours=25)).isoformat()},
        {"secret": first, "expires_at": overlap_end},
    ]
    # Once expired, a secret is dropped at the next rotation.
    world.clock.now = START + timedelta(hours=3)
    fourth = hooks.rotate_secret(endpoint_id, overlap_hours=0)
    assert world.endpoint(endpoint_id).secrets == [{"secret": fourth, "expires_at": None}]


# --- Replays -------------------------------------------------------------------------------------


def test_replay_from_a_time_moves_the_cursor_before_the_events_written_since(
    world: World,
) -> None:
    world.events(world.acme, "user.created", "user.updated", at=START - timedelta(hours=2))
    world.events(world.acme, "user.updated", "group.created", at=START - timedelta(hours=1))
    world.events(world.globex, "user.created", at=START - timedelta(hours=1))
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL, events=["user.*"]).endpoint.id
    assert world.endpoint(endpoint_id).cursor == 5

    count = hooks.replay(endpoint_id, since=START - timedelta(hours=1, minutes=30))

    assert count == 1  # user.updated at position 3 (group.created is not subscribed)
    assert world.endpoint(endpoint_id).cursor == 2
    # The same moment as ISO 8601 text; a time without an offset is UTC.
    assert hooks.replay(endpoint_id, since="2026-03-01T10:00:00") == 3
    assert world.endpoint(endpoint_id).cursor == 0


def test_replay_from_an_event_id_sends_that_event_again_and_clears_the_backoff(
    world: World,
) -> None:
    ids = world.events(world.acme, "user.created", "user.updated", "user.deleted")
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    with world.sessions.begin() as session:
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                        .values(next_attempt_at=START + timedelta(hours=1), failures=4))

    assert hooks.replay(endpoint_id, since=ids[1]) == 2

    endpoint = world.endpoint(endpoint_id)
    assert (endpoint.cursor, endpoint.next_attempt_at) == (1, None)


def test_replay_never_moves_the_cursor_forward_past_undelivered_events(world: World) -> None:
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    world.events(world.acme, "user.created", "user.updated", at=START)
    world.clock.now = START + timedelta(hours=1)

    assert hooks.replay(endpoint_id, since=world.clock.now) == 2
    assert world.endpoint(endpoint_id).cursor == 0


def test_replay_from_an_unknown_or_foreign_event_id_is_refused(world: World) -> None:
    foreign = world.events(world.globex, "user.created")[0]
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    for event_id in ("evt_00000000000000000000000000000000", foreign):
        with pytest.raises(UnknownEvent, match=f"No event '{event_id}' of this endpoint's "
                                               "tenant in the outbox"):
            hooks.replay(endpoint_id, since=event_id)
    assert world.endpoint(endpoint_id).cursor == 1


# --- Delivery attempts ---------------------------------------------------------------------------


def _record_attempts(world: World, endpoint_id: str, moments: list[datetime]) -> None:
    rows = [{"endpoint_id": endpoint_id, "event_position": index + 1,
             "event_id": f"evt_{index}", "attempted_at": moment,
             "status_code": 500 if index % 2 else 204, "latency_ms": 12.5 + index,
             "error": "HTTP 500" if index % 2 else None}
            for index, moment in enumerate(moments)]
    with world.sessions.begin() as session:
        session.execute(insert(WebhookAttempt), rows)


def test_deliveries_are_listed_newest_first_up_to_the_limit(world: World) -> None:
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    other_id = hooks.add("acme", PUBLIC_URL).endpoint.id
    # Recorded out of time order, as parallel lanes may record them.
    _record_attempts(world, endpoint_id, [START + timedelta(seconds=s) for s in (2, 1, 4, 3)])
    _record_attempts(world, other_id, [START + timedelta(seconds=9)])

    attempts = hooks.deliveries(endpoint_id)

    assert [a.event_id for a in attempts] == ["evt_2", "evt_3", "evt_0", "evt_1"]
    assert [a.attempted_at for a in attempts] == [
        START + timedelta(seconds=s) for s in (4, 3, 2, 1)]
    newest = attempts[0]
    assert (newest.event_position, newest.status_code, newest.latency_ms, newest.error) == (
        3, 204, 14.5, None)
    assert (attempts[1].status_code, attempts[1].error) == (500, "HTTP 500")
    assert [a.event_id for a in hooks.deliveries(endpoint_id, limit=2)] == ["evt_2", "evt_3"]
    assert hooks.deliveries(hooks.add("acme", PUBLIC_URL).endpoint.id) == []


def test_replay_from_a_time_with_another_offset_means_that_moment(world: World) -> None:
    world.events(world.acme, "user.created", "user.updated", at=START - timedelta(hours=2))
    world.events(world.acme, "user.updated", "group.created", at=START - timedelta(hours=1))
    hooks = world.webhooks()
    endpoint_id = hooks.add("acme", PUBLIC_URL, events=["user.*"]).endpoint.id

    # 10:30 UTC, written in UTC+02:00: after the first two events, before the last two.
    assert hooks.replay(endpoint_id, since="2026-03-01T12:30:00+02:00") == 1
    assert world.endpoint(endpoint_id).cursor == 2
