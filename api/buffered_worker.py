"""gunicorn's gthread worker, reading each request whole, under deadlines, before a thread serves
it; gunicorn's own errors as SCIM JSON. See docs/ARCHITECTURE.md ("The HTTP edge").
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn.http import errors as parse_errors  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from scimflow.api.errors import InternalError
from scimflow.api.media import RESPONSE_CONTENT_TYPE
from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.settings import Settings

HEAD_END = b"\r\n\r\n"
# Larger than any head gunicorn accepts with its default limits (a 4 KiB request line, 100
# fields of 8 KiB are its own bounds, answered 414 and 431 by gunicorn itself once the head
# is complete); a head still incomplete at this size is refused here.
MAX_HEAD_BYTES = 64 * 1024
RECV_BYTES = 64 * 1024
# How often the main loop looks for connections past their deadline.
EXPIRY_INTERVAL_SECONDS = 0.25
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)

WsgiCallable = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class EdgeLimits:
    header_seconds: float
    body_seconds: float
    reading_connections: int
    max_body_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(settings.api_header_timeout_seconds, settings.api_body_timeout_seconds,
                   settings.api_reading_connections, settings.max_body_bytes)


@dataclass(frozen=True)
class BodyFraming:
    """What the head says about the body: buffer `length` bytes, or let a thread read it."""

    length: int
    streamed: bool
    expects_continue: bool


@dataclass(eq=False)
class ArrivingRequest:
    """A connection whose request is still arriving, and what has arrived of it."""

    conn: Any  # gunicorn's TConn
    deadline: float
    received: bytearray = field(default_factory=bytearray)
    head_bytes: int | None = None
    body_bytes: int = 0

    def complete(self) -> bool:
        if self.head_bytes is None:
            return False
        return len(self.received) >= self.head_bytes + self.body_bytes


class TimedSocket(socket.socket):
    """A socket whose blocking mode is a timeout: gunicorn sets connections blocking before a
    thread reads them, and a stalled client must give the thread back."""

    stall_seconds: float = 20.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.stall_seconds)
        else:
            super().setblocking(False)


class RequestBufferingWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = EdgeLimits.from_settings(Settings.from_env())
        # Insertion order is age order: the first entry is the one closed when full.
        self.arriving: dict[ArrivingRequest, None] = {}
        self._next_expiry = 0.0
        # TLS and HTTP/2 prior knowledge start with a handshake, not a request head: such
        # connections are served as stock gthread serves them.
        self.buffering = not self.cfg.is_ssl and self.cfg.http2_cleartext not in (
            "prior-knowledge", "both")

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi: WsgiCallable = honour_connection_close(self.wsgi)

    # --- connections arriving ---------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if not self.buffering:
            super().accept(listener)
            return
        try:
            client, address = listener.accept()
        except OSError as ex:
            if ex.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = TConn(self.cfg, self._timed(client), address, listener.getsockname())
        self._start_arriving(conn)

    def on_client_socket_readable(self, conn: Any, client: socket.socket) -> None:
        """A kept-alive connection's next request is arriving: read it in this loop too."""
        if not self.buffering:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.nr_conns -= 1  # counted again once the request is whole
        self._start_arriving(conn)

    def _timed(self, client: socket.socket) -> TimedSocket:
        timed = TimedSocket(client.family, client.type, client.proto, fileno=client.detach())
        timed.stall_seconds = self.limits.body_seconds
        return timed

    def _start_arriving(self, conn: Any) -> None:
        while len(self.arriving) >= self.limits.reading_connections:
            self._drop(next(iter(self.arriving)))
        arriving = ArrivingRequest(conn, time.monotonic() + self.limits.header_seconds)
        self.arriving[arriving] = None
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_bytes, arriving))

    def _on_bytes(self, arriving: ArrivingRequest, client: socket.socket) -> None:
        try:
            data = arriving.conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(arriving)
            return
        arriving.received += data
        if arriving.head_bytes is None:
            self._on_head_bytes(arriving)
        if arriving in self.arriving and arriving.complete():
            self._hand_over(arriving)

    def _on_head_bytes(self, arriving: ArrivingRequest) -> None:
        end = arriving.received.find(HEAD_END)
        if end < 0 or end + len(HEAD_END) > MAX_HEAD_BYTES:
            if len(arriving.received) > MAX_HEAD_BYTES:
                self._refuse_oversized_head(arriving)
            return
        head_bytes = end + len(HEAD_END)
        framing = body_framing(bytes(arriving.received[:head_bytes]), self.limits.max_body_bytes)
        if framing.streamed:
            self._hand_over(arriving)
            return
        if framing.expects_continue:
            head_bytes = self._continue(arriving, head_bytes)
        arriving.head_bytes = head_bytes
        arriving.body_bytes = framing.length
        arriving.deadline = time.monotonic() + self.limits.body_seconds

    def _continue(self, arriving: ArrivingRequest, head_bytes: int) -> int:
        """Answer `100 Continue` here (the body is read here) and take the expectation out of
        the head, so the thread's parser does not send another."""
        head = bytes(arriving.received[:head_bytes])
        stripped = _EXPECT_CONTINUE.sub(b"", head)
        arriving.received[:head_bytes] = stripped
        _send_quietly(arriving.conn.sock, CONTINUE)
        return len(stripped)

    def _refuse_oversized_head(self, arriving: ArrivingRequest) -> None:
        if b"\r\n" in arriving.received:
            self._answer_and_drop(arriving, 431, "The request header fields are too large.")
        else:
            self._answer_and_drop(arriving, 414, "The request line is too long.")

    def _hand_over(self, arriving: ArrivingRequest) -> None:
        """Give the request, whole (or its head, for a streamed body), to a thread."""
        del self.arriving[arriving]
        conn = arriving.conn
        self.poller.unregister(conn.sock)
        conn.init()
        conn.parser.unreader.unread(bytes(arriving.received))
        conn.data_ready = True  # stock gthread would otherwise wait for the socket to be readable
        self.nr_conns += 1  # gunicorn decrements it when the connection closes
        self.enqueue_req(conn)

    # --- deadlines --------------------------------------------------------------------------

    def murder_pending(self) -> None:
        """Run by gunicorn's main loop after every wake-up: close late arrivals too."""
        super().murder_pending()
        now = time.monotonic()
        if now < self._next_expiry:
            return
        self._next_expiry = now + EXPIRY_INTERVAL_SECONDS
        for arriving in [late for late in self.arriving if late.deadline <= now]:
            part = "body" if arriving.head_bytes is not None else "request header"
            self._answer_and_drop(arriving, 408, f"The {part} was not received in time.")

    def _answer_and_drop(self, arriving: ArrivingRequest, status: int, detail: str) -> None:
        _send_quietly(arriving.conn.sock, error_response(status, detail))
        self._drop(arriving)

    def _drop(self, arriving: ArrivingRequest) -> None:
        # Not counted in nr_conns while arriving, so nothing to decrement.
        del self.arriving[arriving]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(arriving.conn.sock)
        arriving.conn.close()

    # --- errors gunicorn answers itself -----------------------------------------------------

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        status, detail = classify_server_error(exc)
        peer = addr[0] if addr else "-"
        if status >= 500:
            self.log.exception("Error handling request from %s", peer)
        else:
            self.log.warning("Invalid request from ip=%s: %s", peer, exc)
        _send_quietly(client, error_response(status, detail), blocking=True)


def body_framing(head: bytes, max_body_bytes: int) -> BodyFraming:
    """Read Content-Length, Transfer-Encoding and Expect from a request head.

    Anything unusual (a transfer coding, a malformed or repeated length, a body over the
    limit) is left to a thread: gunicorn's parser gives the exact error, or the application
    its 413, without this loop having to know every rule.
    """
    lengths: list[bytes] = []
    expects_continue = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return BodyFraming(0, streamed=True, expects_continue=False)
        if name == b"content-length":
            lengths.append(value.strip())
        elif name == b"expect" and value.strip().lower() == b"100-continue":
            expects_continue = True
    if not lengths:
        return BodyFraming(0, streamed=False, expects_continue=False)
    if len(lengths) > 1 or not lengths[0].isdigit() or int(lengths[0]) > max_body_bytes:
        return BodyFraming(0, streamed=True, expects_continue=False)
    return BodyFraming(int(lengths[0]), streamed=False, expects_continue=expects_continue)


_STATUS_BY_ERROR: tuple[tuple[type[BaseException], int], ...] = (
    (parse_errors.LimitRequestLine, 414),
    (parse_errors.LimitRequestHeaders, 431),
    (parse_errors.UnsupportedTransferCoding, 501),
    (parse_errors.ExpectationFailed, 417),
    (parse_errors.ForbiddenProxyRequest, 403),
    (parse_errors.InvalidResponseHeader, 500),  # the application's header: not the client's
    (parse_errors.InvalidResponseHeaderName, 500),
    (parse_errors.ConfigurationProblem, 500),
    (parse_errors.ParseException, 400),
)


def classify_server_error(exc: BaseException) -> tuple[int, str]:
    """The status and detail for an exception gunicorn would answer itself."""
    for error_class, status in _STATUS_BY_ERROR:
        if isinstance(exc, error_class):
            detail = InternalError.default_detail if status >= 500 else str(exc)
            return status, detail or HTTPStatus(status).phrase
    return 500, InternalError.default_detail


def error_response(status: int, detail: str) -> bytes:
    """A complete HTTP/1.1 response with a SCIM error body (RFC 7644 §3.12), closing."""
    body = ScimError(detail).to_body()
    body["status"] = str(status)
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"Content-Type: {RESPONSE_CONTENT_TYPE}\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("latin-1") + payload


def _send_quietly(sock: socket.socket, data: bytes, *, blocking: bool = False) -> None:
    """Best effort: the client may be gone, or (non-blocking) not reading."""
    try:
        if blocking:
            sock.sendall(data)
        else:
            sock.send(data)
    except OSError:
        pass


def honour_connection_close(app: WsgiCallable) -> WsgiCallable:
    """gunicorn drops an application's `Connection` header; this makes `close` close.

    The application says close when it answered without reading the request body (see
    api.middleware.ConnectionReuseMiddleware).
    """

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if any(name.lower() == "connection" and value.lower() == "close"
                   for name, value in headers):
                # start_response is gunicorn's Response.start_response, bound to the response.
                start_response.__self__.force_close()  # type: ignore[attr-defined]
            return start_response(status, headers, *exc_info)

        return app(environ, start)

    return application
