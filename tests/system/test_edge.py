"""The HTTP edge of the real API server: gunicorn as `scimflow api` runs it, on 127.0.0.1.

The server is started with ops/processes.gunicorn_argv (2 processes x 8 threads, 32 worker
connections, the request-buffering worker) serving the API on a SQLite file with no broker
(tests/system/edge_app.py): slow and lying clients must not take its threads, and every error
it answers, its own included, is SCIM JSON.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scimflow.ops.processes import gunicorn_argv
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import upgrade
from tests.support.services import free_port
from tests.system.stack import wait_until_serving

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_SECONDS = 2.0
SLOW_CLIENTS = 80


@dataclass
class Server:
    port: int
    token: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/scim/v2", timeout=5,
                            headers={"Authorization": f"Bearer {self.token}"})

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("edge")) as running:
        yield running


@contextmanager
def serving(workdir: Path, **settings_env: str) -> Iterator[Server]:
    env = {**os.environ,
           "SCIMFLOW_DATABASE_URL": f"sqlite:///{workdir / 'scimflow.sqlite3'}",
           "SCIMFLOW_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
           "SCIMFLOW_API_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
           "SCIMFLOW_LOG_LEVEL": "WARNING", **settings_env}
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    token = Tenancy(make_sessions(make_engine(settings, "tool"))).create("acme").secret
    port = free_port()
    argv = gunicorn_argv("tests.system.edge_app:app", f"127.0.0.1:{port}", 2, 8, 32)
    log = workdir / "api.log"
    with log.open("ab") as output:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", process, log)
        yield Server(port, token, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- slow clients --------------------------------------------------------------------------


def _trickle(sockets: list[socket.socket], stop: threading.Event, interval: float) -> None:
    """Send each socket one more byte of an endless header every `interval` seconds."""
    for sock in sockets:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    while not stop.wait(interval):
        for sock in sockets:
            with suppress(OSError):  # closed by the server: deadline, or the bound
                sock.send(b"a")


def _ordinary_latencies(server: Server, seconds: float) -> list[float]:
    """Authenticated GETs, each on a new connection, for `seconds`: their latencies."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        with server.client() as client:
            response = client.get("/Users", params={"count": "1"})
        assert response.status_code == 200, response.text
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    return latencies


def _report(label: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    print(f"\n{label}: {len(ordered)} requests, p50 {statistics.median(ordered) * 1000:.1f} ms,"
          f" p95 {ordered[int(len(ordered) * 0.95) - 1] * 1000:.1f} ms,"
          f" max {ordered[-1] * 1000:.1f} ms")


@contextmanager
def trickling(server: Server, *, every: float) -> Iterator[list[socket.socket]]:
    """`SLOW_CLIENTS` connections sending their request head one byte per `every` seconds."""
    slow = [server.connect() for _ in range(SLOW_CLIENTS)]
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(slow, stop, every), daemon=True)
    trickler.start()
    try:
        time.sleep(0.5)
        yield slow
    finally:
        stop.set()
        trickler.join(timeout=5)


def test_ordinary_requests_are_answered_within_a_second_during_80_slow_header_clients(
    server: Server,
) -> None:
    with trickling(server, every=1.5) as slow:
        latencies = _ordinary_latencies(server, seconds=6)
        for sock in slow:
            sock.close()
    _report(f"GET /Users during {SLOW_CLIENTS} slow-header clients", latencies)
    assert max(latencies) < 1.0


def test_when_the_reading_bound_is_full_the_oldest_slow_client_goes(
    tmp_path: Path,
) -> None:
    """10 arriving connections per process at most: 80 slow clients take none of the others'."""
    with serving(tmp_path, SCIMFLOW_API_READING_CONNECTIONS="10") as bounded:
        with trickling(bounded, every=1.0) as slow:
            latencies = _ordinary_latencies(bounded, seconds=3)
        closed = sum(1 for sock in slow if _closed_by_server(sock))
        for sock in slow:
            sock.close()
    _report(f"GET /Users during {SLOW_CLIENTS} slow clients, reading bound 10", latencies)
    assert max(latencies) < 1.0
    assert closed >= SLOW_CLIENTS - 2 * 10


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_slow_header_client_is_answered_408_at_the_header_deadline(server: Server) -> None:
    header_timeout = Settings().api_header_timeout_seconds
    with server.connect() as sock:
        sock.settimeout(header_timeout + 5)
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = _read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert header_timeout - 0.5 < elapsed < header_timeout + 2
    assert _error_body(answer)["status"] == "408"


def test_a_body_shorter_than_its_content_length_is_closed_at_the_body_deadline(
    server: Server,
) -> None:
    """More liars than the 16 threads: none holds a thread, each gets 408 when its time is up."""
    liars = [server.connect() for _ in range(40)]
    for sock in liars:
        sock.sendall(b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + server.token.encode() + b"\r\n"
                     b"Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{}")
    started = time.monotonic()
    latencies = _ordinary_latencies(server, seconds=BODY_TIMEOUT_SECONDS - 0.5)
    answers = []
    for sock in liars:
        sock.settimeout(BODY_TIMEOUT_SECONDS + 5)
        answers.append(_read_until_closed(sock))
        sock.close()
    elapsed = time.monotonic() - started
    _report("GET /Users during 40 short-body clients", latencies)
    assert max(latencies) < 1.0
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)
    assert elapsed < BODY_TIMEOUT_SECONDS + 2


def test_a_slow_body_within_its_deadline_is_served(server: Server) -> None:
    body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": "slow@example.com"}).encode()
    with server.connect() as sock:
        sock.sendall(_post_head(server, len(body)))
        for piece in (body[:10], body[10:20], body[20:]):
            time.sleep(0.3)
            sock.sendall(piece)
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer


def test_expect_100_continue_gets_one_interim_answer(server: Server) -> None:
    body = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": "expect@example.com"}).encode()
    with server.connect() as sock:
        sock.sendall(_post_head(server, len(body), b"Expect: 100-continue\r\n"))
        interim = sock.recv(100)
        sock.sendall(body)
        answer = _read_response(sock)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 201 "), answer


def test_a_kept_alive_connection_serves_request_after_request(server: Server) -> None:
    with server.client() as client:
        statuses = [client.get("/Users").status_code for _ in range(50)]
        statuses.append(client.head("/Users").status_code)
    assert statuses == [200] * 51


# --- early answers close the connection ----------------------------------------------------


def test_413_says_close_and_the_next_request_works(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(_post_head(server, MAX_BODY_BYTES * 4) + b"x" * 1000)
        answer = _read_until_closed(sock)
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head
    assert _error_body(answer)["status"] == "413"
    with server.client() as client:
        assert client.post("/Users", content=b"x" * (MAX_BODY_BYTES + 1),
                           headers={"Content-Type": "application/scim+json"}).status_code == 413
        assert client.get("/Users").status_code == 200  # same client, fresh connection


def test_a_malformed_chunked_body_is_400_invalid_syntax(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + server.token.encode() + b"\r\n"
                     b"Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"zz\r\n{}\r\n0\r\n\r\n")
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    body = _error_body(answer)
    assert body["scimType"] == "invalidSyntax"


# --- errors gunicorn answers itself --------------------------------------------------------


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", "431"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: y\r\n" * 10_000, "431"),
    (b"NOT A REQUEST LINE\r\n\r\n", "400"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n", "400"),
], ids=["uri-too-long", "field-too-large", "head-too-large", "request-line", "header-name"])
def test_server_level_errors_are_scim_json(
    server: Server, request_bytes: bytes, status: str
) -> None:
    with server.connect() as sock:
        sock.sendall(request_bytes)
        answer = _read_until_closed(sock)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"content-type: application/scim+json" in answer.split(b"\r\n\r\n")[0].lower()
    body = _error_body(answer)
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == status
    assert body["detail"]


def test_head_answers_like_get_without_a_body(server: Server) -> None:
    with server.client() as client:
        get = client.get("/Users")
        head = client.head("/Users")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]


def test_the_server_still_serves_after_all_of_the_above(server: Server) -> None:
    """Closed slow clients were never counted as served connections: nothing leaked."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]
    assert "Traceback" not in server.log.read_text(errors="replace")


# --- helpers -------------------------------------------------------------------------------


def _post_head(server: Server, length: int, extra: bytes = b"") -> bytes:
    return (b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + server.token.encode() + b"\r\n" + extra
            + b"Content-Type: application/scim+json\r\nContent-Length: "
            + str(length).encode() + b"\r\n\r\n")


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _read_response(sock: socket.socket) -> bytes:
    """One response on a kept-alive connection (its body delimited by Content-Length)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _error_body(answer: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return body


def test_an_idle_kept_alive_connection_serves_the_next_request(server: Server) -> None:
    """Idle longer than gunicorn's default keep-alive (2 s) and the head deadline (10 s), the
    connection still serves: a client reusing it after waiting out a Retry-After never meets a
    server closing it just as the request leaves."""
    request = (f"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {server.token}\r\n\r\n").encode()
    with server.connect() as sock:
        sock.settimeout(5)
        sock.sendall(request)
        first = _read_one_response(sock)
        time.sleep(12)
        sock.sendall(request)
        second = _read_one_response(sock)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 "), second[:200]


def _read_one_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed by the server after {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head)[1])  # type: ignore[index]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body
