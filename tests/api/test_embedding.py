"""The SCIM API mounted inside another WSGI application, under a path prefix (docs/EMBEDDING.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.wsgi import build_app
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import RecordingDispatcher

PREFIX = "/idp"
StartResponse = Callable[..., Any]


def host_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the host application"]


def mounted(scim: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The host's dispatcher: `/idp/scim/v2/...` goes to scimflow, the prefix in SCRIPT_NAME."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(f"{PREFIX}/scim/v2"):
            environ = {**environ, "SCRIPT_NAME": PREFIX, "PATH_INFO": path[len(PREFIX):]}
            return scim(environ, start_response)
        return host_app(environ, start_response)

    return application


def test_scimflow_serves_its_paths_under_a_prefix_and_the_host_the_rest(
    settings: Settings, sessions: sessionmaker[Session], acme: IssuedToken
) -> None:
    embedded = replace(settings, public_url=f"https://app.example.test{PREFIX}")
    client = testing.TestClient(mounted(build_app(embedded, RecordingDispatcher())))
    headers = {"Authorization": f"Bearer {acme.secret}"}

    created = client.simulate_post(f"{PREFIX}/scim/v2/Users", headers=headers, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann",
    })
    assert created.status_code == 201, created.text
    location = f"https://app.example.test{PREFIX}/scim/v2/Users/{created.json['id']}"
    assert created.headers["Location"] == created.json["meta"]["location"] == location

    found = client.simulate_get(f"{PREFIX}/scim/v2/Users", headers=headers,
                                params={"filter": 'userName eq "ann"'})
    assert found.json["totalResults"] == 1

    assert client.simulate_get("/dashboard").text == "the host application"


def test_under_a_prefix_only_the_scim_base_asks_for_a_token(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A host handing its whole `/idp` to scimflow: `/idp/foo` is a 404 for anyone, while an
    unknown path under the SCIM base still asks for authentication first."""
    embedded = replace(settings, public_url=f"https://app.example.test{PREFIX}")
    scim = build_app(embedded, RecordingDispatcher())

    def whole_prefix(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        environ = {**environ, "SCRIPT_NAME": PREFIX, "PATH_INFO": path.removeprefix(PREFIX)}
        return scim(environ, start_response)

    client = testing.TestClient(whole_prefix)
    outside = client.simulate_get(f"{PREFIX}/foo")
    assert outside.status_code == 404, outside.text
    assert outside.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert client.simulate_get(f"{PREFIX}/scim/v2/NoSuchEndpoint").status_code == 401
    assert client.simulate_get(f"{PREFIX}/healthz").json == {"status": "ok"}
