"""/metrics of the API: request counters by method, resource type and status, the
acknowledgement latency of writes, refusals, and the backlog read at scrape time.

The counters are prometheus-client's process-wide ones (no multiprocess directory in the
tests), so each test compares the figures before and after its own requests.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.app import create_app
from scimflow.api.metrics import (
    BacklogCollector,
    TenantBacklog,
    record_request,
    resource_type_of,
    scrape_registry,
)
from scimflow.api.services import ApiServices
from scimflow.api.wsgi import backlog_reader
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.services.admission import Admission, AdmissionLimits
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import BASE, RecordingDispatcher, create_user, scim_body
from tests.conftest import read_sample


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client: testing.TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    result = client.simulate_get("/metrics")
    assert result.status_code == 200, result.text
    assert result.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(result.text) for s in family.samples}


def test_requests_are_counted_by_method_resource_type_and_status(
    client: testing.TestClient,
) -> None:
    created = ("scimflow_http_requests_total",
               {"method": "POST", "resource_type": "Users", "status": "201"})
    missing = ("scimflow_http_requests_total",
               {"method": "GET", "resource_type": "Groups", "status": "404"})
    acks = ("scimflow_ack_latency_seconds_count", {"method": "POST", "resource_type": "Users"})
    before = [value(name, **labels) for name, labels in (created, missing, acks)]

    create_user(client)
    assert client.simulate_get(f"{BASE}/Groups/nobody").status_code == 404

    after = [value(name, **labels) for name, labels in (created, missing, acks)]
    # Only writes are acknowledgements; the 404 GET is not timed as one.
    assert after == [before[0] + 1, before[1] + 1, before[2] + 1]


def test_metrics_need_no_token_and_list_the_request_metrics(
    anonymous: testing.TestClient, client: testing.TestClient,
) -> None:
    create_user(client)
    figures = scraped(anonymous)
    names = {name for name, _ in figures}
    assert {"scimflow_http_requests_total", "scimflow_ack_latency_seconds_bucket",
            "scimflow_ack_latency_seconds_count"} <= names
    key = ("scimflow_http_requests_total",
           frozenset({"method": "POST", "resource_type": "Users", "status": "201"}.items()))
    assert figures[key] >= 1


def test_metrics_answer_prometheus_accept_header(anonymous: testing.TestClient) -> None:
    accept = "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5"
    assert anonymous.simulate_get("/metrics", headers={"Accept": accept}).status_code == 200


def test_an_admission_refusal_is_counted_as_a_429(
    services: ApiServices, sessions: sessionmaker[Session], dispatcher: RecordingDispatcher,
    protocol: ScimProtocol, acme: IssuedToken,
) -> None:
    # A backlog limit of 0: every write is over it.
    admission = Admission(sessions, AdmissionLimits(tenant_backlog=0))
    writes = WriteService(sessions, protocol, dispatcher, admission=admission)
    client = testing.TestClient(create_app(replace(services, writes=writes)),
                                headers={"Authorization": f"Bearer {acme.secret}"})
    refused = value("scimflow_admissions_refused_total", resource_type="Users")
    counted = value("scimflow_http_requests_total", method="POST", resource_type="Users",
                    status="429")

    body = read_sample("idp/okta/okta-create-user.json")
    assert client.simulate_post(f"{BASE}/Users", **scim_body(body)).status_code == 429

    assert value("scimflow_admissions_refused_total", resource_type="Users") == refused + 1
    assert value("scimflow_http_requests_total", method="POST", resource_type="Users",
                 status="429") == counted + 1


def test_resource_type_labels_are_a_bounded_set() -> None:
    assert resource_type_of("/scim/v2/Users/abc") == "Users"
    assert resource_type_of("/scim/v2/Groups/.search") == "Groups"
    assert resource_type_of("/scim/v2/.search") == ".search"
    assert resource_type_of("/scim/v2/Schemas/urn:x") == "Schemas"
    # Whatever a client makes up is one label, not one per path.
    assert resource_type_of("/scim/v2/Anything-at-all") == "other"
    assert resource_type_of("/wp-admin/setup.php") == "other"
    assert resource_type_of("/app/v1/tenants/t/sessions/s") == "app"
    assert resource_type_of("/healthz") == "healthz"


def test_the_backlog_per_tenant_is_read_from_the_journal(
    client: testing.TestClient, sessions: sessionmaker[Session],
) -> None:
    create_user(client)  # no worker here: it stays pending
    read = backlog_reader(sessions)()

    assert read["acme"].pending == 1
    assert datetime.now(UTC) - read["acme"].oldest_pending_at < timedelta(minutes=1)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.ticks = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.ticks


def test_the_backlog_collector_reads_once_per_cache_period() -> None:
    clock = FakeClock()
    reads: list[int] = []

    def read() -> dict[str, TenantBacklog]:
        reads.append(1)
        return {"acme": TenantBacklog(7, clock.now - timedelta(seconds=42))}

    registry = scrape_registry(BacklogCollector(read, cache_seconds=1.5, clock=clock,
                                                monotonic=clock.monotonic))
    assert registry.get_sample_value("scimflow_backlog", {"tenant": "acme"}) == 7
    assert registry.get_sample_value("scimflow_oldest_pending_seconds", {"tenant": "acme"}) == 42
    registry.get_sample_value("scimflow_backlog", {"tenant": "acme"})
    assert len(reads) == 1
    clock.ticks += 2
    registry.get_sample_value("scimflow_backlog", {"tenant": "acme"})
    assert len(reads) == 2


def test_a_failed_backlog_read_leaves_the_scrape_answering() -> None:
    def read() -> dict[str, TenantBacklog]:
        raise RuntimeError("database down")

    registry = scrape_registry(BacklogCollector(read))
    assert registry.get_sample_value("scimflow_backlog", {"tenant": "acme"}) is None


def test_invented_methods_share_one_label_and_probe_503s_are_no_pool_timeouts() -> None:
    other = ("scimflow_http_requests_total",
             {"method": "other", "resource_type": "Users", "status": "405"})
    timeouts = ("scimflow_pool_timeouts_total", {"resource_type": "readyz"})
    refused = ("scimflow_admissions_refused_total", {"resource_type": "Users"})
    before = [value(name, **labels) for name, labels in (other, timeouts, refused)]
    for invented in ("FOO1", "FOO2"):
        record_request(invented, f"{BASE}/Users", 405, 0.001, authenticated=False)
    record_request("GET", "/readyz", 503, 0.001, authenticated=False)
    # The throttle's 429 for an unknown token is no admission refusal.
    record_request("POST", f"{BASE}/Users", 429, 0.001, authenticated=False)
    after = [value(name, **labels) for name, labels in (other, timeouts, refused)]
    assert after == [before[0] + 2, before[1], before[2]]
    assert value("scimflow_http_requests_total", method="FOO1", resource_type="Users",
                 status="405") == 0


def test_each_acknowledged_write_is_one_log_line_naming_its_resource(
    client: testing.TestClient, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="scimflow.api"):
        created = create_user(client)
        assert client.simulate_get(f"{BASE}/Users/{created['id']}").status_code == 200
    lines = [r for r in caplog.records if r.name == "scimflow.api"]
    assert [r.getMessage() for r in lines] == ["acknowledged POST /scim/v2/Users"]
    assert lines[0].resource_id == created["id"]  # type: ignore[attr-defined]
    assert lines[0].latency_ms >= 0  # type: ignore[attr-defined]
