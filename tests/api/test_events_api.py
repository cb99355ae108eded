"""The events API over the real Falcon app: `GET /events`, `POST /events/poll` (RFC 8936),
`GET /events/jwks.json`, authenticated by application keys, never by a tenant's SCIM token."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.app import create_app
from scimflow.api.services import ApiServices, EventsApi
from scimflow.api.wsgi import build_app, security_events
from scimflow.ops.serve import embedded_process
from scimflow.pipeline.events.model import EventDraft, Subject, event_document, new_event_id
from scimflow.pipeline.events.sets import SetVerificationError, verify_set
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.discovery import Capabilities
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.events_feed import EventsFeed
from scimflow.pipeline.services.poll_feed import PollFeed, PollRequest
from scimflow.pipeline.services.set_signing import EVENT_URIS, SetSigner
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import outbox
from scimflow.pipeline.store.app_keys import IssuedAppKey
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import BASE, PUBLIC_URL, RecordingDispatcher

JSON = "application/json"


class EventLog:
    """Appends outbox events as the applying transaction does, and remembers their ids."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._seq = 0

    def add(self, tenant_id: str, event_type: str = "user.created", **draft: Any) -> str:
        self._seq += 1
        resource_type = "Group" if event_type.startswith("group.") else "User"
        resource_id = str(uuid.uuid4())
        identity = ({"externalId": None, "displayName": "crew"} if resource_type == "Group"
                    else {"externalId": None, "userName": f"user{self._seq}"})
        document = event_document(
            EventDraft(type=event_type, version=1, seq=self._seq,
                       data={"id": resource_id, **identity}, identity=identity, **draft),
            Subject(tenant_id, resource_type, resource_id),
            event_id=new_event_id(), occurred_at=utc_now(),
        )
        with self._sessions.begin() as session:
            outbox.append(session, [{
                "event_id": document["id"], "tenant_id": tenant_id, "event_type": event_type,
                "resource_type": resource_type, "resource_id": resource_id,
                "journal_seq": self._seq, "payload": document, "created_at": utc_now(),
            }])
        return str(document["id"])


@pytest.fixture
def events_api(sessions: sessionmaker[Session]) -> EventsApi:
    signer = SetSigner(sessions, issuer=PUBLIC_URL)
    return EventsApi(
        app_keys=AppKeys(sessions, cache_seconds=0),
        feed=EventsFeed(sessions),
        # A short long poll: the tests wait for nothing longer than they must.
        poll=PollFeed(sessions, signer, long_poll_seconds=0.2, interval_seconds=0.05),
        signer=signer,
    )


@pytest.fixture
def app(services: ApiServices, events_api: EventsApi, settings: Settings) -> testing.TestClient:
    wired = replace(services, events=events_api,
                    capabilities=Capabilities(security_events=security_events(settings)))
    return testing.TestClient(create_app(wired))


@pytest.fixture
def log(sessions: sessionmaker[Session]) -> EventLog:
    return EventLog(sessions)


@pytest.fixture
def every_tenant(events_api: EventsApi) -> IssuedAppKey:
    return events_api.app_keys.create(label="all")


def bearer(key: IssuedAppKey | IssuedToken) -> dict[str, str]:
    secret = key.key if isinstance(key, IssuedAppKey) else key.secret
    return {"Authorization": f"Bearer {secret}"}


def page(client: testing.TestClient, key: IssuedAppKey, **params: Any) -> dict[str, Any]:
    result = client.simulate_get("/events", headers=bearer(key), params=params)
    assert result.status_code == 200, result.text
    assert result.headers["Content-Type"].startswith(JSON)
    body: dict[str, Any] = result.json
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [event["id"] for event in body["data"]]


# --- GET /events ---------------------------------------------------------------------------------


def test_events_come_in_order_and_the_cursor_resumes_after_the_page(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    written = [log.add(acme.tenant.id) for _ in range(5)]

    first = page(app, every_tenant, limit="2")
    assert ids(first) == written[:2] and first["has_more"] is True
    assert first["next_cursor"] == first["data"][-1]["cursor"]
    second = page(app, every_tenant, limit="2", after=first["next_cursor"])
    assert ids(second) == written[2:4] and second["has_more"] is True
    third = page(app, every_tenant, limit="2", after=second["next_cursor"])
    assert ids(third) == written[4:] and third["has_more"] is False

    assert page(app, every_tenant, after=third["next_cursor"])["data"] == []
    later = log.add(acme.tenant.id)
    assert ids(page(app, every_tenant, after=third["next_cursor"])) == [later]
    assert ids(page(app, every_tenant)) == [*written, later]  # no cursor: from the oldest


def test_types_narrow_the_events_and_patterns_name_several(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    created = log.add(acme.tenant.id, "user.created")
    added = log.add(acme.tenant.id, "group.member_added",
                    member={"value": "u1", "type": "User"})
    deleted = log.add(acme.tenant.id, "user.deleted")

    assert ids(page(app, every_tenant, types="user.created,group.member_added")) == [created,
                                                                                     added]
    body = page(app, every_tenant, types="user.*", limit="1")
    assert ids(body) == [created] and body["has_more"] is True
    assert ids(page(app, every_tenant, types="user.*", after=body["next_cursor"])) == [deleted]


def test_a_filtered_page_that_ends_the_feed_moves_the_cursor_past_what_it_skipped(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    log.add(acme.tenant.id, "user.created")
    log.add(acme.tenant.id, "user.updated", changed_attributes=("name",))
    body = page(app, every_tenant, types="group.deleted")
    assert body == {"data": [], "next_cursor": "pos_2", "has_more": False}


def test_a_key_reads_only_its_tenants(
    app: testing.TestClient, events_api: EventsApi, log: EventLog, acme: IssuedToken,
    globex: IssuedToken,
) -> None:
    every_tenant = events_api.app_keys.create()
    acme_event = log.add(acme.tenant.id)
    globex_event = log.add(globex.tenant.id)
    acme_only = events_api.app_keys.create(tenants=["acme"])

    assert ids(page(app, acme_only)) == [acme_event]
    assert ids(page(app, acme_only, tenant="acme")) == [acme_event]
    assert ids(page(app, every_tenant)) == [acme_event, globex_event]
    assert ids(page(app, every_tenant, tenant=globex.tenant.id)) == [globex_event]

    for tenant in ("globex", "no-such-tenant"):
        refused = app.simulate_get("/events", headers=bearer(acme_only),
                                   params={"tenant": tenant})
        assert refused.status_code == 403
        assert refused.json["code"] == "access_denied"
    unknown = app.simulate_get("/events", headers=bearer(every_tenant),
                               params={"tenant": "no-such-tenant"})
    assert (unknown.status_code, unknown.json["code"]) == (400, "invalid_request")


@pytest.mark.parametrize(("params", "code"), [
    ({"after": "42"}, "invalid_cursor"),
    ({"after": "pos_x"}, "invalid_cursor"),
    ({"after": "pos_-1"}, "invalid_cursor"),
    ({"limit": "0"}, "invalid_limit"),
    ({"limit": "1001"}, "invalid_limit"),
    ({"limit": "ten"}, "invalid_limit"),
    ({"types": "user.created,user.renamed"}, "invalid_event_type"),
])
def test_bad_parameters_are_400_with_a_json_error(
    app: testing.TestClient, every_tenant: IssuedAppKey, params: dict[str, str], code: str
) -> None:
    result = app.simulate_get("/events", headers=bearer(every_tenant), params=params)
    assert result.status_code == 400
    assert result.headers["Content-Type"].startswith(JSON)
    assert result.json["code"] == code and result.json["message"]


def test_the_limit_defaults_to_100_and_goes_up_to_1000(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    for _ in range(101):
        log.add(acme.tenant.id)
    assert len(page(app, every_tenant)["data"]) == 100
    assert len(page(app, every_tenant, limit="1000")["data"]) == 101


# --- Authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/events", "/events/poll"])
def test_a_tenant_scim_token_or_no_key_is_401(
    app: testing.TestClient, acme: IssuedToken, path: str
) -> None:
    for headers in (bearer(acme), {}, {"Authorization": "Bearer sfk_not-a-key"}):
        result = app.simulate_request("GET" if path == "/events" else "POST", path,
                                      headers=headers, json={})
        assert result.status_code == 401, headers
        assert result.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused(
    app: testing.TestClient, events_api: EventsApi, every_tenant: IssuedAppKey
) -> None:
    assert app.simulate_get("/events", headers=bearer(every_tenant)).status_code == 200
    assert events_api.app_keys.revoke(every_tenant.id) is True
    assert app.simulate_get("/events", headers=bearer(every_tenant)).status_code == 401


def test_an_app_key_is_no_scim_token(
    app: testing.TestClient, every_tenant: IssuedAppKey
) -> None:
    assert app.simulate_get(f"{BASE}/Users", headers=bearer(every_tenant)).status_code == 401


# --- POST /events/poll (RFC 8936) ----------------------------------------------------------------


def poll(client: testing.TestClient, key: IssuedAppKey, **body: Any) -> dict[str, Any]:
    result = client.simulate_post("/events/poll", headers=bearer(key),
                                  json={"returnImmediately": True, **body})
    assert result.status_code == 200, result.text
    assert result.headers["Content-Type"].startswith(JSON)
    answered: dict[str, Any] = result.json
    return answered


def test_unacknowledged_sets_come_again_and_acknowledged_ones_never(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    first, second, third = (log.add(acme.tenant.id) for _ in range(3))

    answer = poll(app, every_tenant, maxEvents=2)
    assert list(answer["sets"]) == [first, second] and answer["moreAvailable"] is True
    again = poll(app, every_tenant, maxEvents=2)
    assert list(again["sets"]) == [first, second]  # nothing acknowledged: handed out again

    # Out of order: the second is acknowledged, the first is not.
    answer = poll(app, every_tenant, ack=[second], maxEvents=5)
    assert list(answer["sets"]) == [first, third] and answer["moreAvailable"] is False
    answer = poll(app, every_tenant, ack=[first],
                  setErrs={third: {"err": "invalid_key", "description": "unknown kid"}})
    assert answer == {"sets": {}, "moreAvailable": False}

    fourth = log.add(acme.tenant.id)
    assert list(poll(app, every_tenant)["sets"]) == [fourth]


def test_an_ack_only_poll_returns_no_sets(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    first, _second = log.add(acme.tenant.id), log.add(acme.tenant.id)
    poll(app, every_tenant)
    answer = poll(app, every_tenant, ack=[first], maxEvents=0)
    assert answer == {"sets": {}, "moreAvailable": True}


def test_each_key_has_its_own_feed_of_its_own_tenants(
    app: testing.TestClient, events_api: EventsApi, log: EventLog, acme: IssuedToken,
    globex: IssuedToken,
) -> None:
    every_tenant = events_api.app_keys.create()
    acme_event, globex_event = log.add(acme.tenant.id), log.add(globex.tenant.id)
    acme_only = events_api.app_keys.create(tenants=[acme.tenant.id])
    poll(app, every_tenant, ack=[acme_event, globex_event])

    # A jti outside the key's tenants acknowledges nothing, and is never handed out.
    assert list(poll(app, acme_only, ack=[globex_event])["sets"]) == [acme_event]
    assert poll(app, every_tenant) == {"sets": {}, "moreAvailable": False}


def test_the_sets_verify_with_the_jwks_the_api_publishes(
    app: testing.TestClient, log: EventLog, acme: IssuedToken, every_tenant: IssuedAppKey
) -> None:
    event_id = log.add(acme.tenant.id, "user.created")
    token = poll(app, every_tenant)["sets"][event_id]

    served = app.simulate_get("/events/jwks.json")  # public: no key
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/jwk-set+json"
    claims = verify_set(token, served.json, audience=every_tenant.id)
    assert claims["jti"] == event_id and claims["iss"] == PUBLIC_URL
    assert "urn:ietf:params:scim:event:prov:create:full" in claims["events"]
    with pytest.raises(SetVerificationError):
        verify_set(token, served.json, audience="another-application")
    asked_by_type = app.simulate_get("/events/jwks.json",
                                     headers={"Accept": "application/jwk-set+json"})
    assert asked_by_type.status_code == 200 and asked_by_type.json == served.json


def test_a_long_poll_answers_an_event_written_while_it_waits(
    sessions: sessionmaker[Session], log: EventLog, acme: IssuedToken,
    events_api: EventsApi, every_tenant: IssuedAppKey,
) -> None:
    written: list[str] = []

    def sleep(_seconds: float) -> None:
        if not written:
            written.append(log.add(acme.tenant.id))

    waiting = PollFeed(sessions, events_api.signer, long_poll_seconds=5, sleep=sleep)
    grant = events_api.app_keys.authenticate(every_tenant.key)
    assert grant is not None
    answer = waiting.poll(grant, PollRequest(return_immediately=False))
    assert list(answer.sets) == written


def test_a_long_poll_with_nothing_to_send_answers_empty_after_its_wait(
    app: testing.TestClient, every_tenant: IssuedAppKey
) -> None:
    result = app.simulate_post("/events/poll", headers=bearer(every_tenant), json={})
    assert result.json == {"sets": {}, "moreAvailable": False}


@pytest.mark.parametrize("body", [
    [], {"ack": "evt_1"}, {"ack": [1]}, {"maxEvents": -1}, {"maxEvents": True},
    {"returnImmediately": "yes"}, {"setErrs": {"evt_1": {"description": "no err"}}},
    {"acks": []},
])
def test_a_malformed_poll_is_400_invalid_request(
    app: testing.TestClient, every_tenant: IssuedAppKey, body: Any
) -> None:
    result = app.simulate_post("/events/poll", headers=bearer(every_tenant), json=body)
    assert result.status_code == 400
    assert result.json["err"] == "invalid_request" and result.json["description"]
    broken = app.simulate_post("/events/poll", headers={**bearer(every_tenant),
                                                        "Content-Type": JSON}, body="{")
    assert (broken.status_code, broken.json["err"]) == (400, "invalid_request")


# --- Discovery and the composition root ----------------------------------------------------------


def test_service_provider_config_advertises_the_security_events(
    app: testing.TestClient, acme: IssuedToken
) -> None:
    config = app.simulate_get(f"{BASE}/ServiceProviderConfig", headers=bearer(acme)).json
    extension = "urn:scimflow:schemas:extension:events:1.0:ServiceProviderConfig"
    assert config["schemas"][1:] == [extension]
    assert config["securityEvents"] == {"asyncRequest": "none", "eventUris": list(EVENT_URIS)}
    assert config[extension]["poll"]["endpoint"] == f"{PUBLIC_URL}/events/poll"
    assert config[extension]["jwksUri"] == f"{PUBLIC_URL}/events/jwks.json"
    assert config[extension]["push"]["supported"] is True


def test_the_production_app_serves_the_events_api(
    settings: Settings, sessions: sessionmaker[Session], acme: IssuedToken
) -> None:
    client = testing.TestClient(build_app(settings, RecordingDispatcher()))
    key = AppKeys(sessions).create(tenants=["acme"])
    event_id = EventLog(sessions).add(acme.tenant.id)

    assert ids(page(client, key)) == [event_id]
    token = poll(client, key)["sets"][event_id]
    jwks = json.loads(client.simulate_get("/events/jwks.json").text)
    assert verify_set(token, jwks, audience=key.id)["jti"] == event_id
    config = client.simulate_get(f"{BASE}/ServiceProviderConfig", headers=bearer(acme)).json
    assert config["securityEvents"]["eventUris"] == list(EVENT_URIS)


def test_scimflow_serve_delivers_an_applied_write_to_a_waiting_poll(
    settings: Settings, sessions: sessionmaker[Session], acme: IssuedToken
) -> None:
    app_wsgi, worker = embedded_process(settings)
    client = testing.TestClient(app_wsgi)
    key = AppKeys(sessions).create()
    worker.start()
    try:
        created = client.simulate_post(f"{BASE}/Users", headers=bearer(acme), json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann",
        })
        assert created.status_code == 201, created.text
        # Not returnImmediately: the poll waits until the in-process worker has applied it.
        answer = client.simulate_post("/events/poll", headers=bearer(key), json={}).json
    finally:
        worker.stop()
    (token,) = answer["sets"].values()
    jwks = client.simulate_get("/events/jwks.json").json
    claims = verify_set(token, jwks, audience=key.id)
    assert claims["sub_id"] == {"format": "scim", "uri": f"/Users/{created.json['id']}",
                                "userName": "ann"}


def test_only_so_many_polls_wait_at_once_the_others_answer_at_once(
    sessions: sessionmaker[Session],
) -> None:
    """A waiting poll holds a request thread the IdPs' writes need."""
    keys = AppKeys(sessions)
    grant = keys.authenticate(keys.create().key)
    assert grant is not None
    feed = PollFeed(sessions, SetSigner(sessions, issuer=PUBLIC_URL), long_poll_seconds=2.0,
                    interval_seconds=0.05, max_waiting=1)
    waiting = threading.Thread(target=feed.poll, args=(grant, PollRequest.from_json({})))
    waiting.start()
    time.sleep(0.2)

    started = time.monotonic()
    answer = feed.poll(grant, PollRequest.from_json({}))

    assert answer.sets == {} and time.monotonic() - started < 0.5
    waiting.join()


def test_the_jwks_has_a_key_before_the_first_set_is_signed(app: testing.TestClient) -> None:
    """A receiver of pushed SETs fetches the keys when it is set up, before any event."""
    served = app.simulate_get("/events/jwks.json").json
    assert len(served["keys"]) == 1 and served["keys"][0]["use"] == "sig"
    assert app.simulate_get("/events/jwks.json").json == served  # the same key, not a new one
