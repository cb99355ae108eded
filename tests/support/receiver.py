"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records every request
and answers as the test tells it to (status, Retry-After, delay)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Behaviour = Callable[[Received], Answer]


def first_arrivals(received: list[Received]) -> list[dict[str, Any]]:
    """Each event once, as it first arrived (a repeat is known by its webhook-id)."""
    seen: set[str] = set()
    documents = []
    for request in received:
        if request.headers["webhook-id"] not in seen:
            seen.add(request.headers["webhook-id"])
            documents.append(request.document)
    return documents


def assert_in_order_per_resource(documents: list[dict[str, Any]]) -> None:
    """No event of a resource arrived before an earlier one (versions never go down)."""
    versions: dict[str, list[int]] = defaultdict(list)
    for document in documents:
        versions[document["resource"]["id"]].append(document["resource"]["version"])
    disordered = {rid: seen for rid, seen in versions.items() if seen != sorted(seen)}
    assert not disordered, list(disordered.items())[:5]


def accept(_: Received) -> Answer:
    return Answer()


@dataclass
class Receiver:
    port: int
    behaviour: Behaviour = accept
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, request: Received) -> Answer:
        with self.lock:
            self.received.append(request)
        return self.behaviour(request)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return
            time.sleep(0.05)
        raise AssertionError(f"not received within {timeout}s ({len(self.snapshot())} so far)")


@contextmanager
def running_receiver(behaviour: Behaviour = accept) -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                               body, time.monotonic())
            answer = holder["receiver"].record(request)
            if answer.delay:
                time.sleep(answer.delay)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A sender that gave up (a timeout) resets its connection: expected, not worth a trace.
    server.handle_error = lambda *_: None  # type: ignore[method-assign]
    holder["receiver"] = Receiver(server.server_address[1], behaviour)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["receiver"]
    finally:
        server.shutdown()
        server.server_close()
