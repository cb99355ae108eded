"""Sending one webhook delivery attempt: HTTP/1.1 over kept-alive connections, never redirected.

A delivery is one small POST and its answer's status, so it is written and read here on the
socket (`PinnedConnection`): one `sendall` of the request, the answer's head parsed, its body
read past. That costs half the CPU of `http.client` per attempt (whose request building and
header parsing, through the `email` package, were most of a delivery's time), and lets every
read wait exactly what is left of the attempt. Every thread has its own connections
(`threading.local`), one per (scheme, host, port), so the delivery threads never share a
socket.

What makes it safe to point at URLs chosen by others:

- a connection is opened only to the addresses `resolve_destination` approved for the host
  (the IP is pinned; TLS still verifies the certificate against the host name);
- redirects are never followed (a 3xx is a failed attempt), so an approved destination cannot
  bounce the worker elsewhere;
- at most `MAX_RESPONSE_BYTES` of an answer are read; a longer answer closes the connection;
- one `timeout` bounds the whole attempt on the wall clock: resolving the host (on a helper
  thread, as `getaddrinfo` has no timeout), connecting, sending and every read of the answer
  (each waits only what is left: a receiver trickling its answer a byte at a time cannot hold
  a delivery thread past the timeout). The TLS handshake gets what is left as its socket
  timeout, per operation.

An attempt never raises: refusals, DNS failures, timeouts and resets are an `AttemptResult`
with no status and a short error. A kept-alive connection the server closed while idle is
reopened once, transparently (the request had not reached the application).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

from scimflow.pipeline.events.destinations import (
    DestinationRefused,
    check_url,
    resolve_destination,
)

MAX_RESPONSE_BYTES = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024
RETRY_AFTER_STATUSES = (429, 503)
USER_AGENT = "scimflow-webhooks"
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[..., list[str]]
PoolKey = tuple[str, str, int]


class _Pool:
    """One thread's connections, by (scheme, host, port)."""

    def __init__(self) -> None:
        self.connections: dict[PoolKey, PinnedConnection] = {}


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one delivery attempt came to."""

    status: int | None
    latency_ms: float
    error: str | None
    retry_after: float | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Deadline:
    """One attempt's moment to give up (`time.monotonic`)."""

    __slots__ = ("at",)

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's time ran out")
        return left


class ClosedWithoutAnswer(ConnectionError):
    """The server closed the connection before answering."""


class InvalidAnswer(ValueError):
    """What came back is not an HTTP/1.x answer."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    keep_alive: bool


class PinnedConnection:
    """One HTTP/1.1 connection to `host`, opened to approved addresses only.

    The host name still goes in `Host` and, for https, in SNI and certificate verification.
    Every read waits at most what is left of the attempt (`Deadline`), so a receiver cannot
    stretch an attempt past its timeout by trickling its answer.
    """

    def __init__(self, host: str, port: int, *, addresses: list[str],
                 tls: ssl.SSLContext | None, default_port: int) -> None:
        self.host = host
        self.port = port
        self.addresses = addresses
        self.tls = tls
        self.host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host:  # an IPv6 literal
            self.host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        self.sock: socket.socket | None = None
        self._buffer = bytearray()

    def connect(self, deadline: Deadline) -> None:
        last_error: OSError | None = None
        for address in self.addresses:
            try:
                sock = socket.create_connection((address, self.port), deadline.remaining())
            except OSError as exc:
                last_error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = self._secured(sock, deadline)
            return
        raise last_error or OSError(f"{self.host} has no address to connect to")

    def _secured(self, sock: socket.socket, deadline: Deadline) -> socket.socket:
        if self.tls is None:
            return sock
        try:
            sock.settimeout(deadline.remaining())
            return self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._buffer.clear()

    def exchange(self, request: bytes, deadline: Deadline) -> Answer:
        """Send one request; read its answer's head and at most `MAX_RESPONSE_BYTES` of its
        body (a longer one leaves the connection unusable: `keep_alive` is then false)."""
        assert self.sock is not None
        self.sock.settimeout(deadline.remaining())
        self.sock.sendall(request)
        while True:
            status, headers, http11 = self._read_head(deadline)
            if status >= 200:
                break  # a 1xx is an interim answer: the real one follows
        whole = self._read_body(status, headers, deadline)
        connection = headers.get("connection", "").lower()
        keep_alive = whole and http11 and "close" not in connection
        return Answer(status, headers, keep_alive)

    def _read_head(self, deadline: Deadline) -> tuple[int, dict[str, str], bool]:
        end = self._buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise InvalidAnswer("the answer's head is too long")
            self._receive(deadline, first=not self._buffer)
            end = self._buffer.find(b"\r\n\r\n")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[:end + 4]
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise InvalidAnswer(f"not an HTTP/1.x status line: {status_line[:40]!r}")
        headers = {}
        for line in lines:
            name, separator, value = line.partition(":")
            if separator:
                headers[name.strip().lower()] = value.strip()
        return int(code), headers, version == "HTTP/1.1"

    def _read_body(self, status: int, headers: dict[str, str], deadline: Deadline) -> bool:
        """Read and drop the body; whether it was read whole (the connection is reusable)."""
        if status in (204, 304):
            return True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunks(deadline)
        length = headers.get("content-length")
        if length is None or not length.strip().isdigit():
            return False  # delimited by the close: not reusable, and not worth reading
        return self._take(int(length), deadline)

    def _read_chunks(self, deadline: Deadline) -> bool:
        read = 0
        while read <= MAX_RESPONSE_BYTES:
            size_line = self._line(deadline)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self._line(deadline):  # trailers, up to the empty line
                    pass
                return True
            if not self._take(size, deadline) or not self._take(2, deadline):
                return False
            read += size
        return False

    def _line(self, deadline: Deadline) -> bytes:
        end = self._buffer.find(b"\r\n")
        while end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise InvalidAnswer("a chunk line is too long")
            self._receive(deadline)
            end = self._buffer.find(b"\r\n")
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    def _take(self, count: int, deadline: Deadline) -> bool:
        """Drop `count` bytes of body; false (nothing read) when it is more than is read."""
        if count > MAX_RESPONSE_BYTES:
            return False
        while len(self._buffer) < count:
            self._receive(deadline)
        del self._buffer[:count]
        return True

    def _receive(self, deadline: Deadline, *, first: bool = False) -> None:
        assert self.sock is not None
        self.sock.settimeout(deadline.remaining())
        data = self.sock.recv(65536)
        if not data:
            if first:
                raise ClosedWithoutAnswer("the connection closed without an answer")
            raise InvalidAnswer("the connection closed in the middle of the answer")
        self._buffer += data


class WebhookTransport:
    """Posts deliveries; safe to share between threads (each has its own connections)."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        resolve: Resolver = resolve_destination,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._resolve = resolve
        self._tls = tls_context or ssl.create_default_context()
        self._local = threading.local()
        # getaddrinfo has no timeout of its own: it runs here, waited for as long as the
        # attempt has left (a resolver that never answers keeps one of these threads).
        self._resolver = ThreadPoolExecutor(4, thread_name_prefix="scimflow-webhook-dns")
        # Weak: a pool goes with its thread; close() reaches the pools of live threads.
        self._pools: weakref.WeakSet[_Pool] = weakref.WeakSet()
        self._pools_lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        started = time.perf_counter()
        deadline = Deadline(self.timeout)
        try:
            _checked_url(url, self.allow_private)
            answer = self._send(url, body, headers, deadline)
        except Exception as exc:  # every failure is a result, never a raise
            return AttemptResult(None, _elapsed_ms(started), describe_error(exc), None)
        return _result(answer, _elapsed_ms(started))

    def close(self) -> None:
        """Close every connection of every thread (at shutdown)."""
        with self._pools_lock:
            for pool in list(self._pools):
                for connection in list(pool.connections.values()):
                    connection.close()
                pool.connections.clear()

    def _send(
        self, url: str, body: bytes, headers: Mapping[str, str], deadline: Deadline
    ) -> Answer:
        key, target = _destination(url)
        pool = self._pool()
        reusable = pool.connections.get(key)
        if reusable is not None and reusable.sock is not None:
            request = _request(target, reusable.host_header, body, headers)
            try:
                return self._exchange(pool, key, reusable, request, deadline)
            except (ClosedWithoutAnswer, ConnectionResetError, BrokenPipeError):
                pass  # the server closed the idle connection as it was reused: reopen, once
        # A connection the server closed is not reopened to its old addresses: resolve anew.
        self._drop(pool, key)
        connection = pool.connections[key] = self._open(key, deadline)
        connection.connect(deadline)
        request = _request(target, connection.host_header, body, headers)
        return self._exchange(pool, key, connection, request, deadline)

    def _exchange(self, pool: _Pool, key: PoolKey, connection: PinnedConnection,
                  request: bytes, deadline: Deadline) -> Answer:
        try:
            answer = connection.exchange(request, deadline)
        except BaseException:
            self._drop(pool, key)
            raise
        if not answer.keep_alive:
            # Closed by the server, or a longer answer than anyone needs: not worth draining.
            self._drop(pool, key)
        return answer

    def _open(self, key: PoolKey, deadline: Deadline) -> PinnedConnection:
        scheme, host, port = key
        resolving = self._resolver.submit(self._resolve, host, port,
                                          allow_private=self.allow_private)
        try:
            addresses = resolving.result(timeout=deadline.remaining())
        except FutureTimeout:
            raise TimeoutError(f"resolving {host} took too long") from None
        tls = self._tls if scheme == "https" else None
        return PinnedConnection(host, port, addresses=addresses, tls=tls,
                                default_port=DEFAULT_PORTS[scheme])

    def _pool(self) -> _Pool:
        pool: _Pool | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = _Pool()
            with self._pools_lock:
                self._pools.add(pool)
        return pool

    @staticmethod
    def _drop(pool: _Pool, key: PoolKey) -> None:
        connection = pool.connections.pop(key, None)
        if connection is not None:
            connection.close()


@lru_cache(maxsize=1024)
def _checked_url(url: str, allow_private: bool) -> None:
    """`check_url`, once per URL: an endpoint's URL is the same on every delivery (a refused
    one raises, and raising is not remembered)."""
    check_url(url, allow_private=allow_private)


@lru_cache(maxsize=1024)
def _destination(url: str) -> tuple[PoolKey, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    key = (scheme, parts.hostname or "", parts.port or DEFAULT_PORTS[scheme])
    return key, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _request(target: str, host: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """A POST's bytes: the head (header names and values as given; they come from scimflow,
    never from a receiver) and the body, sent with one `sendall`."""
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if not any(name.lower() == "user-agent" for name in headers):
        lines.append(f"User-Agent: {USER_AGENT}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _result(answer: Answer, latency_ms: float) -> AttemptResult:
    error = None
    if 300 <= answer.status < 400:
        error = f"redirect to {answer.headers.get('location', '(no Location)')} not followed"
    retry_after = None
    if answer.status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(answer.headers.get("retry-after"), now=time.time())
    return AttemptResult(answer.status, latency_ms, error, retry_after)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait, from `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - now, 0.0)


def describe_error(exc: BaseException) -> str:
    """A short, log-friendly reason for a failed attempt."""
    if isinstance(exc, DestinationRefused):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ClosedWithoutAnswer):
        return "connection closed without a response"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, InvalidAnswer):
        return f"invalid HTTP response: {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

