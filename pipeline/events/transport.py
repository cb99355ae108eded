"""Sending one webhook delivery attempt: HTTP/1.1 over kept-alive connections, never redirected.

Built on `http.client` because a delivery is one small POST and its answer's status: no
session machinery is needed, and each attempt costs one request on a connection that is
usually already open. Every thread has its own connections (`threading.local`), one per
(scheme, host, port), so the delivery threads never share a socket.

What makes it safe to point at URLs chosen by others:

- a connection is opened only to the addresses `resolve_destination` approved for the host
  (the IP is pinned; TLS still verifies the certificate against the host name);
- redirects are never followed (a 3xx is a failed attempt), so an approved destination cannot
  bounce the worker elsewhere;
- at most `MAX_RESPONSE_BYTES` of an answer are read; a longer answer closes the connection;
- one `timeout` bounds the whole attempt on the wall clock: resolving the host, connecting,
  the TLS handshake, sending and the answer. A socket timeout alone bounds each read, and a
  receiver trickling its answer a byte at a time would hold a delivery thread for ever; so a
  watchdog shuts down the socket of an attempt past its deadline, which ends any blocked read.

An attempt never raises: refusals, DNS failures, timeouts and resets are an `AttemptResult`
with no status and a short error. A kept-alive connection the server closed while idle is
reopened once, transparently (the request had not reached the application).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from scimflow.pipeline.events.destinations import (
    DestinationRefused,
    check_url,
    resolve_destination,
)

MAX_RESPONSE_BYTES = 64 * 1024
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


@dataclass(order=True)
class Deadline:
    """One attempt's moment to give up (`time.monotonic`), and the socket it watches."""

    at: float
    order: int
    sock: socket.socket | None = field(default=None, compare=False)
    fired: bool = field(default=False, compare=False)
    finished: bool = field(default=False, compare=False)

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0 or self.fired:
            raise TimeoutError("the attempt's time ran out")
        return left


class Watchdog:
    """One thread that shuts down the sockets of attempts past their deadline."""

    def __init__(self) -> None:
        self._heap: list[Deadline] = []
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def deadline(self, seconds: float) -> Deadline:
        deadline = Deadline(time.monotonic() + seconds, next(self._order))
        with self._wake:
            heapq.heappush(self._heap, deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="scimflow-webhook-deadlines")
                self._thread.start()
            self._wake.notify()
        return deadline

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                wait = self._heap[0].at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                deadline = heapq.heappop(self._heap)
            if not deadline.finished:
                deadline.fired = True
                _shut(deadline.sock)


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    # The plain socket's shutdown, also under TLS: the reading thread is woken at once, and no
    # TLS close_notify is attempted from this thread. Already closed: nothing to do.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to `host` that opens its socket to approved addresses only.

    The host name still goes in `Host` and, for https, in SNI and certificate verification.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: list[str],
        timeout: float,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses
        self.tls = tls
        # The attempt under way: what is left of its time bounds connecting.
        self.deadline: Deadline | None = None

    def connect(self) -> None:
        last_error: OSError | None = None
        for address in self.addresses:
            left = self.deadline.remaining() if self.deadline else self.timeout
            try:
                sock = socket.create_connection((address, self.port), left)
            except OSError as exc:
                last_error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.deadline is not None:
                self.deadline.sock = sock  # the handshake is watched too
            self.sock = self._secured(sock)
            return
        raise last_error or OSError(f"{self.host} has no address to connect to")

    def _secured(self, sock: socket.socket) -> socket.socket:
        if self.tls is None:
            return sock
        try:
            return self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


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
        self._watchdog = Watchdog()
        # getaddrinfo has no timeout of its own: it runs here, waited for as long as the
        # attempt has left (a resolver that never answers keeps one of these threads).
        self._resolver = ThreadPoolExecutor(4, thread_name_prefix="scimflow-webhook-dns")
        # Weak: a pool goes with its thread; close() reaches the pools of live threads.
        self._pools: weakref.WeakSet[_Pool] = weakref.WeakSet()
        self._pools_lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        started = time.perf_counter()
        deadline = self._watchdog.deadline(self.timeout)
        try:
            check_url(url, allow_private=self.allow_private)
            response_status, response_headers = self._send(url, body, headers, deadline)
        except Exception as exc:  # every failure is a result, never a raise
            error = "timed out" if deadline.fired else describe_error(exc)
            return AttemptResult(None, _elapsed_ms(started), error, None)
        finally:
            deadline.finished = True
        return _result(response_status, response_headers, _elapsed_ms(started))

    def close(self) -> None:
        """Close every connection of every thread (at shutdown)."""
        with self._pools_lock:
            for pool in list(self._pools):
                for connection in list(pool.connections.values()):
                    connection.close()
                pool.connections.clear()

    def _send(
        self, url: str, body: bytes, headers: Mapping[str, str], deadline: Deadline
    ) -> tuple[int, http.client.HTTPMessage]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        key = (scheme, host, parts.port or DEFAULT_PORTS[scheme])
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request_headers = dict(headers)
        if not any(name.lower() == "user-agent" for name in request_headers):
            request_headers["User-Agent"] = USER_AGENT
        pool = self._pool()
        reusable = pool.connections.get(key)
        if reusable is not None and reusable.sock is not None:
            try:
                return self._exchange(reusable, target, body, request_headers, deadline)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed the idle connection as it was reused: open a new one, once
                # (unless it was the watchdog that closed it).
                if deadline.fired:
                    self._drop(pool, key)
                    raise
            except BaseException:
                self._drop(pool, key)
                raise
        # A connection the server closed is not reopened to its old addresses: resolve anew.
        self._drop(pool, key)
        connection = pool.connections[key] = self._open(key, deadline)
        try:
            return self._exchange(connection, target, body, request_headers, deadline)
        except BaseException:
            self._drop(pool, key)
            raise

    def _open(self, key: PoolKey, deadline: Deadline) -> PinnedConnection:
        scheme, host, port = key
        resolving = self._resolver.submit(self._resolve, host, port,
                                          allow_private=self.allow_private)
        try:
            addresses = resolving.result(timeout=deadline.remaining())
        except FutureTimeout:
            raise TimeoutError(f"resolving {host} took too long") from None
        tls = self._tls if scheme == "https" else None
        return PinnedConnection(host, port, addresses=addresses, timeout=self.timeout, tls=tls)

    def _exchange(
        self,
        connection: PinnedConnection,
        target: str,
        body: bytes,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> tuple[int, http.client.HTTPMessage]:
        connection.deadline = deadline
        if connection.sock is None:
            connection.connect()
        deadline.sock = connection.sock
        # Each read waits at most what is left; the watchdog ends the attempt at its deadline
        # however the answer trickles in.
        connection.sock.settimeout(deadline.remaining())
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        if not response.isclosed():
            # A longer answer than anyone needs: not worth draining to keep the connection.
            connection.close()
        return response.status, response.headers

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


def _result(status: int, headers: http.client.HTTPMessage, latency_ms: float) -> AttemptResult:
    error = None
    if 300 <= status < 400:
        error = f"redirect to {headers.get('Location', '(no Location)')} not followed"
    retry_after = None
    if status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(headers.get("Retry-After"), now=time.time())
    return AttemptResult(status, latency_ms, error, retry_after)


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
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP response: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

