"""HEAD, content negotiation, connection reuse after early errors, body framing errors and the
authentication back-off, through the Falcon app (the real server: tests/system/test_edge.py)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest
from falcon import testing

from scimflow.api.app import create_app
from scimflow.api.services import ApiServices
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import BASE, MAX_BODY_BYTES, SCIM_JSON, assert_scim_error, client_for
from tests.conftest import read_sample

# --- HEAD --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{BASE}/Users", f"{BASE}/Groups", f"{BASE}/Schemas",
                                  f"{BASE}/ResourceTypes/User", f"{BASE}/ServiceProviderConfig",
                                  "/healthz"])
def test_head_answers_wherever_get_does_without_a_body(
    client: testing.TestClient, path: str
) -> None:
    get = client.simulate_get(path)
    head = client.simulate_head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


def test_head_of_an_item_carries_its_etag(client: testing.TestClient) -> None:
    sample = read_sample("idp/okta/okta-create-user.json")
    created = client.simulate_post(f"{BASE}/Users", body=json.dumps(sample),
                                   headers={"Content-Type": SCIM_JSON})
    head = client.simulate_head(f"{BASE}/Users/{created.json['id']}")
    assert head.status_code == 200
    assert head.headers["ETag"] == created.headers["ETag"]
    assert head.content == b""


def test_head_needs_the_token_like_get(anonymous: testing.TestClient) -> None:
    assert anonymous.simulate_head(f"{BASE}/Users").status_code == 401


def test_405_lists_head(client: testing.TestClient) -> None:
    result = client.simulate_put(f"{BASE}/Users")
    assert result.status_code == 405
    assert "HEAD" in result.headers["Allow"]


# --- Accept ------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [
    "application/xml", "text/html", "application/scim+json;q=0, application/json;q=0",
    "text/*", "application/xml, text/plain;q=0.5",
])
def test_an_accept_excluding_scim_json_is_406(client: testing.TestClient, accept: str) -> None:
    result = client.simulate_get(f"{BASE}/Users", headers={"Accept": accept})
    assert_scim_error(result, 406)
    assert result.headers["Content-Type"] == SCIM_JSON


@pytest.mark.parametrize("accept", [
    None, "*/*", "application/*", "application/scim+json", "application/json",
    "application/xml;q=0.9, application/json;q=0.1", "application/scim+json; charset=utf-8",
    "text/html, */*;q=0.1",
])
def test_an_accept_allowing_scim_json_is_served(
    client: testing.TestClient, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    assert client.simulate_get(f"{BASE}/Users", headers=headers).status_code == 200


# --- connection reuse after an early answer -----------------------------------------------


def test_413_closes_the_connection(client: testing.TestClient) -> None:
    result = client.simulate_post(f"{BASE}/Users", body="x" * (MAX_BODY_BYTES + 1),
                                  headers={"Content-Type": SCIM_JSON})
    assert_scim_error(result, 413)
    assert result.headers["Connection"] == "close"


def test_a_write_refused_before_its_body_is_read_closes(anonymous: testing.TestClient) -> None:
    result = anonymous.simulate_post(f"{BASE}/Users", body="{}",
                                     headers={"Content-Type": SCIM_JSON})
    assert result.status_code == 401
    assert result.headers["Connection"] == "close"


def test_an_error_after_the_body_was_read_keeps_the_connection(
    client: testing.TestClient,
) -> None:
    result = client.simulate_post(f"{BASE}/Users", body='{"userName": 1}',
                                  headers={"Content-Type": SCIM_JSON})
    assert result.status_code == 400
    assert "Connection" not in result.headers


def test_a_get_keeps_the_connection(client: testing.TestClient) -> None:
    assert "Connection" not in client.simulate_get(f"{BASE}/Users").headers


# --- bodies the server cannot frame -------------------------------------------------------


class ChunkSizeError(Exception):
    """Stands for the server's own framing exception (gunicorn: InvalidChunkSize)."""


class BrokenInput(io.RawIOBase):
    def __init__(self, error: Exception) -> None:
        self._error = error

    def read(self, size: int = -1) -> bytes:
        raise self._error


@pytest.mark.parametrize(("error", "status"), [
    (ChunkSizeError("Invalid chunk size: b'zz'"), 400),
    (OSError("fewer bytes than announced"), 400),
    (TimeoutError("timed out"), 408),
])
def test_a_body_the_server_cannot_read_is_a_client_error(
    services: ApiServices, acme: IssuedToken, error: Exception, status: int
) -> None:
    result_status, body, headers = _post_with_input(services, acme, BrokenInput(error))
    assert result_status == status
    assert body["status"] == str(status)
    if status == 400:
        assert body["scimType"] == "invalidSyntax"
    assert ("connection", "close") in headers


def _post_with_input(
    services: ApiServices, acme: IssuedToken, stream: io.RawIOBase
) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    env = testing.create_environ(
        path=f"{BASE}/Users", method="POST",
        headers={"Authorization": f"Bearer {acme.secret}", "Content-Type": SCIM_JSON,
                 "Transfer-Encoding": "chunked"},
    )
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = stream
    env["wsgi.input_terminated"] = True
    start_response = testing.StartResponseMock()
    payload = b"".join(create_app(services)(env, start_response))
    assert start_response.status is not None
    return int(start_response.status.split()[0]), json.loads(payload), start_response.headers


# --- authentication back-off --------------------------------------------------------------


@pytest.fixture
def throttled_services(services: ApiServices) -> ApiServices:
    settings = replace(services.settings, auth_failure_limit=3, auth_failure_window_seconds=60)
    return replace(services, settings=settings)


def test_repeated_failures_from_one_address_get_429_without_a_query(
    throttled_services: ApiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = testing.TestClient(create_app(throttled_services))
    bad = {"Authorization": "Bearer wrong"}
    statuses = [client.simulate_get(f"{BASE}/Users", headers=bad, remote_addr="10.0.0.1")
                .status_code for _ in range(3)]
    queries: list[str] = []
    original = throttled_services.tenancy.authenticate

    def counting(secret: str) -> Any:
        queries.append(secret)
        return original(secret)

    monkeypatch.setattr(throttled_services.tenancy, "authenticate", counting)
    refused = client.simulate_get(f"{BASE}/Users", headers=bad, remote_addr="10.0.0.1")
    assert statuses == [401, 401, 401]
    assert_scim_error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert queries == []


def test_other_addresses_and_known_tokens_are_not_throttled(
    throttled_services: ApiServices, acme: IssuedToken
) -> None:
    client = testing.TestClient(create_app(throttled_services))
    good = {"Authorization": f"Bearer {acme.secret}"}
    # acme's IdP authenticated from the shared address before the failures began.
    assert client.simulate_get(f"{BASE}/Users", headers=good,
                               remote_addr="10.0.0.1").status_code == 200
    for _ in range(3):
        client.simulate_get(f"{BASE}/Users", headers={"Authorization": "Bearer wrong"},
                            remote_addr="10.0.0.1")
    other_wrong = {"Authorization": "Bearer another-guess"}
    assert client.simulate_get(f"{BASE}/Users", headers=other_wrong,
                               remote_addr="10.0.0.1").status_code == 429
    assert client.simulate_get(f"{BASE}/Users", headers=good,
                               remote_addr="10.0.0.1").status_code == 200
    assert client.simulate_get(f"{BASE}/Users", headers={"Authorization": "Bearer wrong"},
                               remote_addr="10.0.0.2").status_code == 401


def test_the_default_client_is_unaffected(services: ApiServices, acme: IssuedToken) -> None:
    assert client_for(services, acme).simulate_get(f"{BASE}/Users").status_code == 200
