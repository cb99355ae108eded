"""The API under granian, the default server, as `scimflow api` runs it in production.

The whole stack is started with the compose commands (tests/system/stack.py): writes are
acknowledged and applied exactly once, a chunked body is read, an idle keep-alive connection
is still open when reused, a malformed request gets an error without ending the API process,
and a client that announces a body it never sends, without a valid token, holds no thread.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.services import require_postgres, require_redis
from tests.system.idp import USER_SCHEMA
from tests.system.stack import Stack, running_stack

pytestmark = pytest.mark.timeout(300)

REDIS_DB = 13  # stack.py: 9, conftest: 10, uwsgi: 11, faults: 12, poison: 14, liveness: 8
IDLE_SECONDS = 5.0


@pytest.fixture(scope="module")
def granian_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    with running_stack(tmp_path_factory.mktemp("granian"), redis_db=REDIS_DB,
                       extra_env={"SCIMFLOW_API_SERVER": "granian"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def token(granian_stack: Stack) -> str:
    return granian_stack.create_tenant(f"granian-{uuid.uuid4().hex[:6]}")["token"]


def _connect(stack: Stack) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.api_port), timeout=10)


def _head(sock: socket.socket) -> bytes:
    """Read up to the end of a response head (enough for a status line and headers)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def _get_users(stack: Stack, token: str) -> bytes:
    return (f"GET /scim/v2/Users?count=1 HTTP/1.1\r\nHost: 127.0.0.1:{stack.api_port}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n").encode()


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def _worker_pids(stack: Stack) -> set[int]:
    root = stack.processes["api"].pid
    children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    return {int(pid) for pid in children}


def test_the_api_is_served_by_granian(granian_stack: Stack) -> None:
    assert "granian" in granian_stack.log("api").lower()
    assert len(_worker_pids(granian_stack)) == 2  # SCIMFLOW_API_PROCESSES


def _post(stack: Stack, token: str, user_name: str, external_id: str) -> int:
    with stack.client(token) as http:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, "externalId": external_id}
        return http.post("/Users", json=body).status_code


def test_creates_are_acknowledged_raced_and_applied_exactly_once(granian_stack: Stack) -> None:
    tenant = granian_stack.create_tenant(f"race-{uuid.uuid4().hex[:6]}")
    secret = tenant["token"]
    with ThreadPoolExecutor(32) as pool:
        race = Counter(pool.map(lambda i: _post(granian_stack, secret, "same@example.com",
                                                f"s{i}"), range(32)))
        distinct = Counter(pool.map(lambda i: _post(granian_stack, secret, f"u{i}@example.com",
                                                    f"d{i}"), range(300)))
    assert race == {201: 1, 409: 31}
    assert distinct == {201: 300}
    granian_stack.wait_until_applied(timeout=120)
    applied = granian_stack.sql("SELECT count(*), count(DISTINCT user_name) FROM users"
                                " WHERE tenant_id = :t", t=tenant["tenant_id"])
    assert tuple(applied[0]) == (301, 301)


def test_a_chunked_body_is_read(granian_stack: Stack, token: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], '
        yield b'"userName": "chunked@example.com"}'

    with granian_stack.client(token) as http:
        response = http.post("/Users", content=chunks())
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]
        assert http.get(f"/Users/{user_id}").json()["userName"] == "chunked@example.com"


def test_a_chunked_body_over_the_limit_gets_413(granian_stack: Stack, token: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "big@example.com", '
        for _ in range(80):  # 80 x 16 KiB: past the default limit of 1 MiB
            yield b'"x": "' + b"a" * 16384 + b'", '
        yield b'"displayName": "big"}'

    with granian_stack.client(token) as http:
        response = http.post("/Users", content=chunks())
    assert response.status_code == 413, response.text
    assert response.json()["status"] == "413"


def test_an_idle_keepalive_connection_is_reused(granian_stack: Stack, token: str) -> None:
    with _connect(granian_stack) as sock:
        sock.sendall(_get_users(granian_stack, token))
        assert _status(_head(sock)) == 200
        time.sleep(IDLE_SECONDS)  # gunicorn's own default (2 s) would have closed it
        sock.sendall(_get_users(granian_stack, token))
        assert _status(_head(sock)) == 200


@pytest.mark.parametrize("request_bytes", [
    b"NONSENSE\r\n\r\n",
    b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_a_malformed_request_gets_an_error_and_the_api_keeps_serving(
    granian_stack: Stack, token: str, request_bytes: bytes,
) -> None:
    before = _worker_pids(granian_stack)
    with _connect(granian_stack) as sock:
        sock.sendall(request_bytes)
        head = _head(sock)
    assert 400 <= _status(head) < 500, head
    with granian_stack.client(token) as http:
        assert http.get("/Users?count=1").status_code == 200
    assert _worker_pids(granian_stack) == before


def test_malformed_json_gets_a_scim_error(granian_stack: Stack, token: str) -> None:
    with granian_stack.client(token) as http:
        response = http.post("/Users", content=b'{"schemas": [')
    assert response.status_code == 400
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_unauthenticated_bodies_never_sent_hold_no_thread(
    granian_stack: Stack, token: str,
) -> None:
    """Far more such clients than the API has threads (2 processes of 4, as composed): each
    is answered 401 at once, the body it announced unread, and served requests are not
    delayed."""
    announced = (b"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                 b"Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{")
    with ExitStack() as held:
        heads = []
        for _ in range(48):
            sock = held.enter_context(_connect(granian_stack))
            sock.sendall(announced)
            heads.append(_head(sock))
        assert {_status(head) for head in heads} == {401}
        assert all(b"connection: close" in head.lower() for head in heads)
        started = time.monotonic()
        with granian_stack.client(token) as http:
            assert http.get("/Users?count=1").status_code == 200
        assert time.monotonic() - started < 2
