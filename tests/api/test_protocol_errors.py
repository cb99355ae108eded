"""Every failure is a SCIM error body with the right status and headers (RFC 7644 §3.12)."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from typing import Any

import pytest
from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.app import create_app
from scimflow.api.services import ApiServices
from scimflow.pipeline.errors import TooManyRequests, Unavailable
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.store.tenants import IssuedToken, TenantRef
from tests.api.conftest import (
    BASE,
    MAX_BODY_BYTES,
    SCIM_JSON,
    RecordingDispatcher,
    assert_scim_error,
    client_for,
    create_user,
    scim_body,
)
from tests.conftest import patch_body, read_sample

# --- authentication ------------------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(anonymous: testing.TestClient) -> None:
    result = anonymous.simulate_get(f"{BASE}/Users")
    assert_scim_error(result, 401)
    assert result.headers["WWW-Authenticate"] == 'Bearer realm="scim"'


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer", "scimflow_abc"],
)
def test_bad_credentials_are_401_invalid_token(services: ApiServices, authorization: str) -> None:
    result = client_for(services, None).simulate_get(
        f"{BASE}/Users", headers={"Authorization": authorization}
    )
    assert_scim_error(result, 401)
    assert result.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in result.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401(
    client: testing.TestClient, tenancy: Tenancy, acme: IssuedToken
) -> None:
    assert client.simulate_get(f"{BASE}/ServiceProviderConfig").status_code == 200
    tenancy.revoke("acme")
    result = client.simulate_get(f"{BASE}/ServiceProviderConfig")
    assert_scim_error(result, 401)
    assert result.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_bearer_scheme_is_case_insensitive(services: ApiServices, acme: IssuedToken) -> None:
    result = client_for(services, None).simulate_get(
        f"{BASE}/ServiceProviderConfig", headers={"Authorization": f"bearer {acme.secret}"}
    )
    assert result.status_code == 200


def test_writes_are_refused_before_the_body_is_read_without_a_token(
    anonymous: testing.TestClient,
) -> None:
    result = anonymous.simulate_post(f"{BASE}/Users", body="{not json")
    assert_scim_error(result, 401)


# --- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [f"{BASE}/Nope", f"{BASE}/Users/a/b", "/", "/scim/v1/Users", f"{BASE}/users"]
)
def test_unknown_urls_are_404_with_a_scim_body(client: testing.TestClient, path: str) -> None:
    assert_scim_error(client.simulate_get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/Schemas"),
        ("PUT", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
        ("DELETE", "/ResourceTypes/User"),
        ("PATCH", "/ServiceProviderConfig"),
        ("GET", "/Users/.search"),
        ("GET", "/.search"),
        ("POST", "/Users/some-id"),
        ("PUT", "/Users"),
    ],
)
def test_unsupported_methods_are_405_with_allow(
    client: testing.TestClient, method: str, path: str
) -> None:
    result = client.simulate_request(method, BASE + path, json={})
    assert_scim_error(result, 405)
    assert result.headers["Allow"]


@pytest.mark.parametrize(("method", "path"), [("POST", "/Bulk"), ("GET", "/Me"), ("PUT", "/Me")])
def test_bulk_and_me_are_501(client: testing.TestClient, method: str, path: str) -> None:
    assert_scim_error(client.simulate_request(method, BASE + path, json={}), 501)


def test_bulk_is_not_advertised(client: testing.TestClient) -> None:
    config = client.simulate_get(f"{BASE}/ServiceProviderConfig").json
    assert config["bulk"]["supported"] is False


# --- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/scim+json; charset=latin-1"]
)
def test_a_write_in_another_media_type_is_415(
    client: testing.TestClient, content_type: str
) -> None:
    body = json.dumps(read_sample("idp/okta/okta-create-user.json"))
    result = client.simulate_post(
        f"{BASE}/Users", body=body, headers={"Content-Type": content_type}
    )
    assert_scim_error(result, 415)


def test_plain_application_json_is_accepted(client: testing.TestClient) -> None:
    result = client.simulate_post(
        f"{BASE}/Users", json=read_sample("idp/okta/okta-create-user.json")
    )
    assert result.status_code == 201


@pytest.mark.parametrize(
    "raw", ["{", "", "   ", '{"userName": NaN}', "[1,", b"\xff\xfe{}", "[" * 100_000]
)
def test_malformed_json_is_400_invalid_syntax(client: testing.TestClient, raw: str | bytes) -> None:
    result = client.simulate_post(f"{BASE}/Users", body=raw, headers={"Content-Type": SCIM_JSON})
    if len(raw) > MAX_BODY_BYTES:
        assert_scim_error(result, 413)
    else:
        assert_scim_error(result, 400, "invalidSyntax")


def test_deeply_nested_json_within_the_limit_is_400(client: testing.TestClient) -> None:
    raw = "[" * 20_000 + "]" * 20_000
    assert len(raw) < MAX_BODY_BYTES
    result = client.simulate_post(f"{BASE}/Users", body=raw, headers={"Content-Type": SCIM_JSON})
    assert result.status_code == 400


def test_a_body_over_the_limit_is_413_from_content_length(client: testing.TestClient) -> None:
    body = read_sample("idp/okta/okta-create-user.json") | {"displayName": "x" * MAX_BODY_BYTES}
    assert_scim_error(client.simulate_post(f"{BASE}/Users", **scim_body(body)), 413)


def test_a_chunked_body_over_the_limit_is_413_while_reading(
    services: ApiServices, acme: IssuedToken
) -> None:
    status, body = _post_chunked(
        services, acme, b'{"userName": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    )
    assert status == 413
    assert body["status"] == "413"


def test_a_chunked_body_within_the_limit_is_read(services: ApiServices, acme: IssuedToken) -> None:
    sample = read_sample("idp/okta/okta-create-user.json")
    status, body = _post_chunked(services, acme, json.dumps(sample).encode())
    assert status == 201
    assert body["userName"] == sample["userName"]


def test_a_chunked_body_the_server_cannot_delimit_is_411(
    services: ApiServices, acme: IssuedToken
) -> None:
    """A server that does not mark where chunked input ends (uWSGI): ask for a length."""
    sample = read_sample("idp/okta/okta-create-user.json")
    status, body = _post_chunked(services, acme, json.dumps(sample).encode(), terminated=False)
    assert (status, body["status"]) == (411, "411")


def _post_chunked(
    services: ApiServices, acme: IssuedToken, body: bytes, *, terminated: bool = True
) -> tuple[int, dict[str, Any]]:
    """POST /Users as a chunked request: no Content-Length, input terminated by the server."""
    env = testing.create_environ(
        path=f"{BASE}/Users",
        method="POST",
        headers={"Authorization": f"Bearer {acme.secret}", "Content-Type": SCIM_JSON,
                 "Transfer-Encoding": "chunked"},
    )
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = io.BytesIO(body)
    if terminated:
        env["wsgi.input_terminated"] = True
    start_response = testing.StartResponseMock()
    payload = b"".join(create_app(services)(env, start_response))
    assert start_response.status is not None
    return int(start_response.status.split()[0]), json.loads(payload)


# --- conflicts and preconditions -----------------------------------------------------------


def test_a_duplicate_user_name_is_409_uniqueness(client: testing.TestClient) -> None:
    create_user(client)
    other = read_sample("idp/okta/okta-create-user.json") | {"externalId": "someone-else"}
    result = client.simulate_post(f"{BASE}/Users", **scim_body(other))
    assert_scim_error(result, 409, "uniqueness")


USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.mark.parametrize(("first", "second", "detail"), [
    # No externalId on either side: the detail names only what clashes (never `None`).
    ({"userName": "alice"}, {"userName": "ALICE"}, 'userName "ALICE" is already in use.'),
    ({"userName": "alice", "externalId": "x1"}, {"userName": "bob", "externalId": "x1"},
     'externalId "x1" is already in use.'),
    ({"userName": "alice", "externalId": "x1"}, {"userName": "Alice", "externalId": "x1"},
     'userName "Alice" and externalId "x1" are already in use.'),
])
def test_a_409_names_the_keys_that_clash(
    client: testing.TestClient, first: dict[str, str], second: dict[str, str], detail: str
) -> None:
    assert client.simulate_post(f"{BASE}/Users", **scim_body({"schemas": [USER], **first}),
                                ).status_code == 201
    result = client.simulate_post(f"{BASE}/Users", **scim_body({"schemas": [USER], **second}))
    assert_scim_error(result, 409, "uniqueness")
    assert result.json["detail"] == detail


def test_a_409_on_replace_names_the_key_that_clashes(client: testing.TestClient) -> None:
    taken = {"schemas": [USER], "userName": "alice"}
    assert client.simulate_post(f"{BASE}/Users", **scim_body(taken)).status_code == 201
    bob = client.simulate_post(f"{BASE}/Users",
                               **scim_body({"schemas": [USER], "userName": "bob"})).json
    result = client.simulate_put(f"{BASE}/Users/{bob['id']}", **scim_body(taken))
    assert_scim_error(result, 409, "uniqueness")
    assert result.json["detail"] == 'userName "alice" is already in use.'


def test_a_409_names_the_key_taken_when_the_resource_keeps_its_other_key(
    client: testing.TestClient,
) -> None:
    """Bob keeps his own userName and takes alice's externalId: the check must look past bob's
    own row, or only the unique index catches it and the detail names nothing."""
    alice = {"schemas": [USER], "userName": "alice", "externalId": "x1"}
    assert client.simulate_post(f"{BASE}/Users", **scim_body(alice)).status_code == 201
    bob = client.simulate_post(f"{BASE}/Users", **scim_body(
        {"schemas": [USER], "userName": "bob", "externalId": "x2"})).json
    path = f"{BASE}/Users/{bob['id']}"
    put = client.simulate_put(path, **scim_body(
        {"schemas": [USER], "userName": "bob", "externalId": "x1"}))
    patch = client.simulate_patch(path, **scim_body(
        patch_body({"op": "replace", "path": "externalId", "value": "x1"})))
    for result in (put, patch):
        assert_scim_error(result, 409, "uniqueness")
        assert result.json["detail"] == 'externalId "x1" is already in use.'


def test_a_stale_if_match_is_412(client: testing.TestClient) -> None:
    user = create_user(client)
    path = f"{BASE}/Users/{user['id']}"
    deactivate = patch_body({"op": "replace", "value": {"active": False}})
    fresh = client.simulate_patch(
        path, headers={"If-Match": 'W/"1"', "Content-Type": SCIM_JSON}, body=json.dumps(deactivate)
    )
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] == 'W/"2"'
    for method in ("PATCH", "PUT", "DELETE"):
        body = deactivate if method == "PATCH" else read_sample("idp/okta/okta-create-user.json")
        result = client.simulate_request(
            method,
            path,
            headers={"If-Match": 'W/"1"', "Content-Type": SCIM_JSON},
            body=json.dumps(body),
        )
        assert_scim_error(result, 412)


def test_writes_to_an_unknown_id_are_404(client: testing.TestClient) -> None:
    path = f"{BASE}/Users/no-such-id"
    patch = patch_body({"op": "replace", "value": {"active": False}})
    assert_scim_error(client.simulate_patch(path, **scim_body(patch)), 404)
    assert_scim_error(client.simulate_delete(path), 404)


# --- query parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["startIndex=one", "count=ten", "count=1.5", "startIndex=", "sortOrder=upwards"]
)
def test_bad_paging_parameters_are_400_invalid_value(
    client: testing.TestClient, query: str
) -> None:
    result = client.simulate_get(f"{BASE}/Users", query_string=query)
    if query == "startIndex=":  # blank means absent, not invalid
        assert result.status_code != 400
    else:
        assert_scim_error(result, 400, "invalidValue")


@pytest.mark.parametrize("body", [{"startIndex": "1"}, {"count": True}, {"attributes": [1]}])
def test_bad_search_bodies_are_400_invalid_value(
    client: testing.TestClient, body: dict[str, Any]
) -> None:
    result = client.simulate_post(f"{BASE}/Users/.search", **scim_body(body))
    assert_scim_error(result, 400, "invalidValue")


def test_a_search_body_that_is_not_an_object_is_400_invalid_syntax(
    client: testing.TestClient,
) -> None:
    result = client.simulate_post(f"{BASE}/.search", **scim_body(["filter"]))
    assert_scim_error(result, 400, "invalidSyntax")


# --- server-side failures ------------------------------------------------------------------


class ExplodingWrites(WriteService):
    def create(self, tenant: TenantRef, type_name: str, payload: Any, *, request_id: str) -> Any:
        raise RuntimeError("connection string postgres://admin:hunter2@db/scim")


def test_an_unexpected_error_is_500_without_internals(
    services: ApiServices,
    sessions: sessionmaker[Session],
    protocol: ScimProtocol,
    acme: IssuedToken,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exploding = replace(services, writes=ExplodingWrites(sessions, protocol, RecordingDispatcher()))
    client = client_for(exploding, acme)
    with caplog.at_level(logging.ERROR, logger="scimflow.api.errors"):
        result = client.simulate_post(
            f"{BASE}/Users",
            headers={"X-Request-Id": "req-500"},
            json=read_sample("idp/okta/okta-create-user.json"),
        )
    body = assert_scim_error(result, 500)
    assert "hunter2" not in result.text
    assert "RuntimeError" not in result.text
    assert "Traceback" not in result.text
    assert "req-500" in body["detail"]
    assert "req-500" in caplog.text
    assert "hunter2" in caplog.text  # the operator still gets the traceback


class ThrottledWrites(WriteService):
    def create(self, tenant: TenantRef, type_name: str, payload: Any, *, request_id: str) -> Any:
        raise TooManyRequests(retry_after=30)


def test_throttling_is_429_with_retry_after(
    services: ApiServices,
    sessions: sessionmaker[Session],
    protocol: ScimProtocol,
    acme: IssuedToken,
) -> None:
    throttled = replace(services, writes=ThrottledWrites(sessions, protocol, RecordingDispatcher()))
    result = client_for(throttled, acme).simulate_post(
        f"{BASE}/Users", json=read_sample("idp/okta/okta-create-user.json")
    )
    assert_scim_error(result, 429)
    assert result.headers["Retry-After"] == "30"


# --- health --------------------------------------------------------------------------------


def test_health_endpoints_need_no_token(anonymous: testing.TestClient) -> None:
    assert anonymous.simulate_get("/healthz").json == {"status": "ok"}
    assert anonymous.simulate_get("/readyz").json == {"status": "ready"}


def test_readiness_is_503_with_retry_after_when_the_database_is_down(
    services: ApiServices,
) -> None:
    def database_down() -> None:
        raise Unavailable("The database is unavailable.", retry_after=5)

    result = client_for(replace(services, ready=database_down), None).simulate_get("/readyz")
    assert_scim_error(result, 503)
    assert result.headers["Retry-After"] == "5"


# --- request ids and media type ------------------------------------------------------------


def test_a_sane_request_id_is_echoed(client: testing.TestClient) -> None:
    result = client.simulate_get("/healthz", headers={"X-Request-Id": "okta-7f3a.91"})
    assert result.headers["X-Request-Id"] == "okta-7f3a.91"


@pytest.mark.parametrize("supplied", ["", "has space", "x" * 65, "<script>", "a\u00e9"])
def test_an_unusable_request_id_is_replaced(client: testing.TestClient, supplied: str) -> None:
    result = client.simulate_get("/healthz", headers={"X-Request-Id": supplied})
    echoed = result.headers["X-Request-Id"]
    assert echoed != supplied
    assert len(echoed) == 32


def test_errors_carry_a_request_id_too(anonymous: testing.TestClient) -> None:
    assert anonymous.simulate_get(f"{BASE}/Users").headers["X-Request-Id"]


def test_responses_are_scim_json(client: testing.TestClient) -> None:
    result = client.simulate_get(f"{BASE}/ServiceProviderConfig")
    assert result.headers["Content-Type"] == SCIM_JSON


def test_a_value_longer_than_the_directory_stores_is_400_invalid_value(
    client: testing.TestClient,
) -> None:
    body = read_sample("idp/okta/okta-create-user.json") | {"userName": "x" * 600 + "@a.com"}
    result = client.simulate_post(f"{BASE}/Users", **scim_body(body))
    assert_scim_error(result, 400, "invalidValue")


@pytest.mark.parametrize("path", ["/", "/foo", "/scim/v1/Users", "/scim/v2x/Users", "/scim"])
def test_a_path_outside_the_scim_base_is_404_without_a_token(
    anonymous: testing.TestClient, path: str
) -> None:
    assert_scim_error(anonymous.simulate_get(path), 404)


def test_under_the_scim_base_authentication_comes_first(anonymous: testing.TestClient) -> None:
    assert_scim_error(anonymous.simulate_get(f"{BASE}/NoSuchEndpoint"), 401)
    assert_scim_error(anonymous.simulate_get(BASE), 401)
