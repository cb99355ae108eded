"""The webhook transport against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scimflow.pipeline.events.transport import WebhookTransport, parse_retry_after

BODY = b'{"id":"evt_1","type":"user.created"}'
HEADERS = {"content-type": "application/json", "webhook-id": "evt_1"}
SLOW_SECONDS = 3.0


class Receiver(ThreadingHTTPServer):
    """Answers by path; counts the connections it accepted and records what it was sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def get_request(self) -> tuple[socket.socket, object]:
        accepted = super().get_request()
        self.connections += 1
        return accepted

    def handle_error(self, request: object, client_address: object) -> None:
        # A client dropping a connection mid-answer is part of the tests, not a failure.
        pass

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body are written separately
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.path, dict(self.headers.items()), body))
        status, headers = ROUTES[self.path.partition("?")[0]]
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        if self.path == "/close-quietly":
            # Closes after answering without saying so: the client will find out on reuse.
            self.close_connection = True
        payload = b"x" * 200_000 if self.path == "/huge" else b"{}"
        if self.path == "/unavailable":
            in_an_hour = datetime.now(UTC) + timedelta(hours=1)
            headers = {"Retry-After": format_datetime(in_an_hour, usegmt=True)}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


ROUTES: dict[str, tuple[int, dict[str, str]]] = {
    "/ok": (200, {}),
    "/accepted": (202, {}),
    "/fail": (500, {}),
    "/gone": (410, {}),
    "/busy": (429, {"Retry-After": "7"}),
    "/unavailable": (503, {}),  # its Retry-After is an hour from the request: `do_POST`
    "/moved": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}),
    "/slow": (200, {}),
    "/close-quietly": (200, {}),
    "/huge": (200, {}),
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def transport() -> Iterator[WebhookTransport]:
    sender = WebhookTransport(timeout=2.0, allow_private=True)
    yield sender
    sender.close()


def test_a_2xx_is_delivered_with_the_body_and_headers_sent(
    receiver: Receiver, transport: WebhookTransport
) -> None:
    result = transport.post(f"{receiver.base}/ok?tenant=acme", BODY, HEADERS)

    assert result.delivered
    assert (result.status, result.error, result.retry_after) == (200, None, None)
    assert 0 < result.latency_ms < 2000
    [(path, headers, body)] = receiver.requests
    assert path == "/ok?tenant=acme"
    assert body == BODY
    assert headers["webhook-id"] == "evt_1"
    assert headers["User-Agent"] == "scimflow-webhooks"
    assert headers["Host"] == f"127.0.0.1:{receiver.server_address[1]}"


@pytest.mark.parametrize(("path", "status"), [("/fail", 500), ("/gone", 410)])
def test_an_error_status_is_not_delivered(
    receiver: Receiver, transport: WebhookTransport, path: str, status: int
) -> None:
    result = transport.post(f"{receiver.base}{path}", BODY, HEADERS)

    assert not result.delivered
    assert result.status == status
    assert result.retry_after is None


def test_429_carries_retry_after_in_seconds(
    receiver: Receiver, transport: WebhookTransport
) -> None:
    result = transport.post(f"{receiver.base}/busy", BODY, HEADERS)

    assert (result.status, result.retry_after, result.delivered) == (429, 7.0, False)


def test_503_carries_retry_after_from_an_http_date(
    receiver: Receiver, transport: WebhookTransport
) -> None:
    result = transport.post(f"{receiver.base}/unavailable", BODY, HEADERS)

    assert result.status == 503
    assert result.retry_after is not None
    assert 3500 < result.retry_after <= 3600


def test_a_redirect_is_not_followed(receiver: Receiver, transport: WebhookTransport) -> None:
    result = transport.post(f"{receiver.base}/moved", BODY, HEADERS)

    assert not result.delivered
    assert result.status == 302
    assert result.error == "redirect to http://169.254.169.254/latest/meta-data/ not followed"
    assert len(receiver.requests) == 1


def test_a_slow_receiver_times_out_within_the_timeout(receiver: Receiver) -> None:
    sender = WebhookTransport(timeout=0.5, allow_private=True)
    try:
        result = sender.post(f"{receiver.base}/slow", BODY, HEADERS)
    finally:
        sender.close()

    assert result.status is None
    assert result.error == "timed out"
    assert 400 < result.latency_ms < 1500


def test_keep_alive_reuses_one_connection(receiver: Receiver, transport: WebhookTransport) -> None:
    results = [transport.post(f"{receiver.base}/ok", BODY, HEADERS) for _ in range(20)]
    results.append(transport.post(f"{receiver.base}/fail", BODY, HEADERS))
    results.append(transport.post(f"{receiver.base}/ok", BODY, HEADERS))

    assert all(result.status is not None for result in results)
    assert len(receiver.requests) == 22
    assert receiver.connections == 1


def test_each_thread_keeps_its_own_connection(
    receiver: Receiver, transport: WebhookTransport
) -> None:
    delivered: list[bool] = []

    def post_many() -> None:
        for _ in range(10):
            delivered.append(transport.post(f"{receiver.base}/ok", BODY, HEADERS).delivered)

    threads = [threading.Thread(target=post_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert delivered == [True] * 40
    assert receiver.connections == 4


def test_a_connection_the_server_closed_is_reopened_once(
    receiver: Receiver, transport: WebhookTransport
) -> None:
    first = transport.post(f"{receiver.base}/close-quietly", BODY, HEADERS)
    time.sleep(0.1)  # the server has closed its end by now
    second = transport.post(f"{receiver.base}/ok", BODY, HEADERS)

    assert first.delivered
    assert second.delivered
    assert receiver.connections == 2


def test_a_huge_answer_is_cut_short_and_its_connection_dropped(
    receiver: Receiver, transport: WebhookTransport
) -> None:
    assert transport.post(f"{receiver.base}/huge", BODY, HEADERS).delivered
    assert transport.post(f"{receiver.base}/ok", BODY, HEADERS).delivered

    assert receiver.connections == 2


def test_a_refused_connection_is_an_error_without_status() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = WebhookTransport(timeout=2.0, allow_private=True)

    result = sender.post(f"http://127.0.0.1:{port}/ok", BODY, HEADERS)

    assert (result.status, result.error, result.delivered) == (None, "connection refused", False)


def test_private_destinations_are_refused_before_connecting(receiver: Receiver) -> None:
    sender = WebhookTransport(timeout=2.0, allow_private=False)

    result = sender.post(f"{receiver.base}/ok", BODY, HEADERS)

    assert result.status is None
    assert result.error is not None
    assert "127.0.0.1 is a loopback address" in result.error
    assert receiver.connections == 0


def test_a_name_resolving_to_a_private_address_is_refused(receiver: Receiver) -> None:
    sender = WebhookTransport(timeout=2.0, allow_private=False)

    result = sender.post(f"http://localhost:{receiver.server_address[1]}/ok", BODY, HEADERS)

    assert result.error is not None
    assert "loopback address" in result.error
    assert receiver.connections == 0


def test_the_connection_goes_to_the_approved_address_with_the_name_as_host(
    receiver: Receiver,
) -> None:
    resolved: list[tuple[str, int]] = []

    def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
        resolved.append((host, port))
        return ["127.0.0.1"]

    sender = WebhookTransport(timeout=2.0, allow_private=True, resolve=resolve)
    port = receiver.server_address[1]
    try:
        results = [sender.post(f"http://hooks.example.test:{port}/ok", BODY, HEADERS)
                   for _ in range(3)]
    finally:
        sender.close()

    assert all(result.delivered for result in results)
    # Resolved once, when the connection opened; the connection is then reused.
    assert resolved == [("hooks.example.test", port)]
    assert receiver.requests[0][1]["Host"] == f"hooks.example.test:{port}"


def test_close_closes_every_connection(receiver: Receiver) -> None:
    sender = WebhookTransport(timeout=2.0, allow_private=True)
    assert sender.post(f"{receiver.base}/ok", BODY, HEADERS).delivered

    sender.close()

    assert sender.post(f"{receiver.base}/ok", BODY, HEADERS).delivered
    assert receiver.connections == 2
    sender.close()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), (" 0 ", 0.0), ("Fri, 04 Dec 2026 09:01:00 GMT", 60.0),
     ("Fri, 04 Dec 2026 08:00:00 GMT", 0.0), ("soon", None), ("-5", None), (None, None)],
)
def test_retry_after_parsing(value: str | None, seconds: float | None) -> None:
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now=now) == seconds


def test_an_answer_trickled_a_byte_at_a_time_is_cut_at_the_timeout() -> None:
    """The timeout bounds the attempt, not each read: a receiver that sends its answer one
    byte every 0.3 s (each read well within the timeout) still costs at most the timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        with contextlib.suppress(OSError):
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                conn.send(bytes([byte]))
                time.sleep(0.3)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    transport = WebhookTransport(timeout=1.0, allow_private=True)
    started = time.monotonic()
    result = transport.post(f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", {})
    assert result.status is None and result.error == "timed out"
    assert time.monotonic() - started < 1.5
    listener.close()


@pytest.mark.parametrize(("answer", "kept"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n0\r\nT: 1\r\n\r\n",
     True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
     True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
])
def test_answers_are_read_whole_and_their_connection_kept_when_it_may_be(
    answer: bytes, kept: bool
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            with contextlib.suppress(OSError):
                while conn.recv(65536):
                    conn.sendall(answer)
                    if not kept:
                        break
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    transport = WebhookTransport(timeout=2.0, allow_private=True)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    results = [transport.post(url, BODY, HEADERS) for _ in range(3)]
    listener.close()

    assert all(result.delivered for result in results), results
    assert len(accepted) == (1 if kept else 3)


def test_garbage_instead_of_an_answer_is_an_invalid_response() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    result = WebhookTransport(timeout=2.0, allow_private=True).post(
        f"http://127.0.0.1:{listener.getsockname()[1]}/", BODY, HEADERS)
    listener.close()

    assert result.status is None and result.error is not None
    assert result.error.startswith("invalid HTTP response")
