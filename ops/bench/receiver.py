"""The benchmark's webhook receiver: `python -m scimflow.ops.bench.receiver --port N`.

A raw HTTP/1.1 keep-alive server on asyncio that answers every POST `204` at once, so that it
never bounds the delivery figure: no framework, no per-request task, one protocol object per
connection parsing its byte stream. For each delivery it records the arrival (wall-clock
seconds, comparable with the benchmark's own clock), the `webhook-id`, and the event's type and
resource id from the JSON body, and verifies the signature with the endpoint's secret
(`pipeline/events/signing.py:verify`; an HMAC-SHA256 costs microseconds, so every delivery is
checked). Requests to `/capacity` are the benchmark's own capacity baseline: answered the
same way, counted apart. `GET /stats` answers the counts so far; `GET /records` everything
recorded. Deliveries to `/catch-up` (a second endpoint of the tenant, signed with its own
secret) are recorded in a log of their own: `GET /catch-up/stats`, `GET /catch-up/records`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from scimflow.pipeline.events.signing import SignatureError, verify

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
CAPACITY_PATH = "/capacity"
CATCH_UP_PATH = "/catch-up"
SECRET_VARIABLE = "SCIMFLOW_BENCH_WEBHOOK_SECRET"
CATCH_UP_SECRET_VARIABLE = "SCIMFLOW_BENCH_CATCH_UP_SECRET"
HEADER_END = b"\r\n\r\n"


@dataclass
class Log:
    """What arrived: one row per delivery, and the baseline's count apart."""

    secret: str
    # [arrival (time.time()), webhook-id, event type, resource id]
    arrivals: list[tuple[float, str, str, str]] = field(default_factory=list)
    webhook_ids: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    unparsable: int = 0
    capacity_requests: int = 0
    first_bad: str | None = None

    def delivery(self, headers: dict[str, str], body: bytes) -> None:
        arrived = time.time()
        try:
            verify(body, headers, self.secret, now=int(arrived))
        except SignatureError as error:
            self.bad_signatures += 1
            self.first_bad = self.first_bad or str(error)
        try:
            document = json.loads(body)
            row = (arrived, headers.get("webhook-id", ""), str(document["type"]),
                   str(document["resource"]["id"]))
        except (ValueError, KeyError, TypeError):
            self.unparsable += 1
            return
        self.arrivals.append(row)
        self.webhook_ids.add(row[1])

    def capacity(self, headers: dict[str, str], body: bytes) -> None:
        # The same work as a delivery (verify and parse), recorded nowhere.
        try:
            verify(body, headers, self.secret, now=int(time.time()))
        except SignatureError:
            self.bad_signatures += 1
        json.loads(body)
        self.capacity_requests += 1

    def stats(self) -> dict[str, Any]:
        return {"received": len(self.arrivals), "distinct": len(self.webhook_ids),
                "first_arrival": self.arrivals[0][0] if self.arrivals else None,
                "last_arrival": self.arrivals[-1][0] if self.arrivals else None,
                "bad_signatures": self.bad_signatures, "first_bad_signature": self.first_bad,
                "unparsable": self.unparsable, "capacity_requests": self.capacity_requests}


class HttpConnection(asyncio.Protocol):
    """One client connection: requests parsed from the buffer as bytes arrive, answered in
    order (HTTP/1.1 pipelining allowed, keep-alive by default)."""

    def __init__(self, log: Log, catch_up: Log) -> None:
        self._log = log
        self._catch_up = catch_up
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        end = self._buffer.find(HEADER_END)
        if end < 0:
            return False
        method, path, headers = parse_head(bytes(self._buffer[:end]))
        length = int(headers.get("content-length", "0"))
        start = end + len(HEADER_END)
        if len(self._buffer) < start + length:
            return False
        body = bytes(self._buffer[start:start + length])
        del self._buffer[:start + length]
        assert self._transport is not None
        self._transport.write(self._answer(method, path, headers, body))
        return True

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if method == "POST":
            if path == CAPACITY_PATH:
                self._log.capacity(headers, body)
            elif path == CATCH_UP_PATH:
                self._catch_up.delivery(headers, body)
            else:
                self._log.delivery(headers, body)
            return NO_CONTENT
        log, _, view = path.rpartition("/")
        if method == "GET" and log in ("", CATCH_UP_PATH) and view in ("stats", "records"):
            chosen = self._catch_up if log == CATCH_UP_PATH else self._log
            value: Any = chosen.stats() if view == "stats" else chosen.arrivals
            payload = json.dumps(value).encode()
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        return NOT_FOUND


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, path, headers with lower-case names) of a request's head."""
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers


async def serve(port: int, log: Log, catch_up: Log) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpConnection(log, catch_up), "127.0.0.1",
                                      port, backlog=1024)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    async with server:
        await stopped.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The secret comes in the environment, not on the command line other users can read.
    secret = os.environ[SECRET_VARIABLE]
    catch_up = Log(os.environ.get(CATCH_UP_SECRET_VARIABLE, secret))
    asyncio.run(serve(args.port, Log(secret), catch_up))


if __name__ == "__main__":
    main()
