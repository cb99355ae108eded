"""The application API's Python client against a tiny local HTTP server: the requests it builds
(paths quoted, bodies, key) and how it reports refusals. The real API: tests/integration/
test_application_api.py.
"""

from __future__ import annotations

import ast
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scimflow import client as client_module
from scimflow.client import AppApiError, AppClient

KEY = "sfk_test"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"


@dataclass
class FakeService:
    """What the server saw, and what it answers next."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    reply: Reply = field(default_factory=Reply)

    def answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.reply = Reply(status, raw, content_type)

    def refuse(self, status: int, detail: str) -> None:
        self.answer(status, {"schemas": [SCIM_ERROR], "status": str(status), "detail": detail})

    @property
    def last(self) -> Seen:
        return self.seen[-1]


def handler_for(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            service.seen.append(Seen(self.command, self.path, self.headers.get("Authorization"),
                                     json.loads(raw) if raw else None))
            reply = service.reply
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def service() -> Iterator[FakeService]:
    fake = FakeService()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client(service: FakeService) -> AppClient:
    return AppClient(service.url + "/", KEY)  # the trailing slash is dropped


def test_path_segments_are_quoted_whole(service: FakeService, client: AppClient) -> None:
    service.answer(200, {"id": "a/b?c#d", "status": "active"})
    client.check_session("acme corp", "a/b?c#d")
    assert service.last == Seen("GET", "/app/v1/tenants/acme%20corp/sessions/a%2Fb%3Fc%23d",
                                f"Bearer {KEY}", None)
    service.answer(200, {"sessions": []})
    client.revoke_sessions("acme", "ü/1")
    assert (service.last.method, service.last.path) == (
        "DELETE", "/app/v1/tenants/acme/users/%C3%BC%2F1/sessions")


def test_a_user_is_looked_up_by_the_one_reference_given(
    service: FakeService, client: AppClient
) -> None:
    client.user("acme", user_name="a&b=c@acme.com")
    assert service.last.path == "/app/v1/tenants/acme/users?userName=a%26b%3Dc%40acme.com"
    client.user("acme", user_id="u-1")
    assert service.last.path == "/app/v1/tenants/acme/users?id=u-1"
    client.history("acme", "u-1")
    assert service.last.path == "/app/v1/tenants/acme/users/u-1/history"


def test_a_session_names_its_user_and_its_own_id(service: FakeService, client: AppClient) -> None:
    client.register_session("acme", external_id="00u1", session_id="s-1")
    assert (service.last.method, service.last.path, service.last.body) == (
        "POST", "/app/v1/tenants/acme/sessions", {"user": {"externalId": "00u1"}, "id": "s-1"})
    client.register_session("acme", user_name="alice")
    assert service.last.body == {"user": {"userName": "alice"}}


def test_a_login_sends_only_the_claims_given(service: FakeService, client: AppClient) -> None:
    client.login("acme", issuer="https://idp", subject="00u1", email="a@acme.com",
                 groups=("Engineering", "Ops"))
    assert service.last.path == "/app/v1/tenants/acme/logins"
    assert service.last.body == {"issuer": "https://idp", "subject": "00u1",
                                 "email": "a@acme.com", "email_verified": False,
                                 "groups": ["Engineering", "Ops"]}


def test_a_refusal_raises_with_its_status_and_detail(
    service: FakeService, client: AppClient
) -> None:
    service.refuse(403, "This application key is not granted this tenant.")
    with pytest.raises(AppApiError) as refused:
        client.sessions_of("acme", "u-1")
    assert (refused.value.status, refused.value.detail) == (
        403, "This application key is not granted this tenant.")


def test_a_refusal_without_a_scim_body_keeps_what_it_says(
    service: FakeService, client: AppClient
) -> None:
    service.answer(502, b"<html>Bad Gateway</html>", "text/html")
    with pytest.raises(AppApiError) as refused:
        client.check_session("acme", "s-1")
    assert (refused.value.status, refused.value.detail) == (502, "<html>Bad Gateway</html>")


def test_is_active_is_false_for_an_unknown_or_revoked_session_only(
    service: FakeService, client: AppClient
) -> None:
    service.answer(200, {"id": "s-1", "status": "active"})
    assert client.is_active("acme", "s-1") is True
    service.answer(200, {"id": "s-1", "status": "revoked", "reason": "deprovisioned"})
    assert client.is_active("acme", "s-1") is False
    service.refuse(404, "No session 's-1' in this tenant.")
    assert client.is_active("acme", "s-1") is False
    service.refuse(401, "Authorization failure: a valid bearer token is required.")
    with pytest.raises(AppApiError) as refused:
        client.is_active("acme", "s-1")
    assert refused.value.status == 401


def test_an_answer_of_the_wrong_shape_is_an_error(service: FakeService, client: AppClient) -> None:
    service.answer(200, {"sessions": "none"})
    with pytest.raises(AppApiError, match="list of sessions"):
        client.sessions_of("acme", "u-1")
    service.answer(200, b"not json")
    with pytest.raises(AppApiError, match="not JSON"):
        client.user("acme", user_id="u-1")


def test_the_client_needs_the_standard_library_only() -> None:
    """An application may copy the one file: it imports nothing else."""
    tree = ast.parse(Path(client_module.__file__).read_text("utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert {name for name in imported
            if name.split(".")[0] not in {*sys.stdlib_module_names, "__future__"}} == set()
