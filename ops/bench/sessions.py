"""Sessions in the sync: the application API's session check, answered from the acknowledged state.

The benchmark creates an application key for its tenant (`scimflow app-key create --tenant`) and
measures, through the application API (`/app/v1/tenants/{tenant}/sessions`):

- deprovision -> session check revoked: before each deactivation PATCH of the sync it registers
  a session for the user (`POST .../sessions`); once the PATCH's 2xx is received it checks the
  session (`GET .../sessions/{sid}`) every 20 ms until the answer reads `revoked`, and records
  the seconds from the acknowledgement (wall clock, as `SyncState.deprovision_acked`) to that
  answer. The check answers from the acknowledged state, so this does not wait for the workers:
  it is measured while the sync drains;
- session-check capacity: once the sync converged, sessions for about a thousand active users,
  then N checks at the sync's concurrency, every answer 200 and `active`. The bare Falcon
  baseline is driven with GETs of the same shape (same path form, same headers, same
  concurrency and server configuration) in the same run, so the ratio is what authentication,
  the tenant and the session's read (with its user's acknowledged state) cost over the
  framework's own GET. The CPU time of every
  role over the checks tells where they go (API processes, PostgreSQL, the load generator).
  Then up to SERIAL_CHECKS checks one at a time (against the baseline too): the latency of a
  check when it does not queue behind others.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.cpu import CpuMeter
from scimflow.ops.bench.existence import rate_and_latency
from scimflow.ops.bench.http import Connection, Response
from scimflow.ops.bench.load import Driver, Tally, run_closed_loop
from scimflow.ops.bench.stack import Processes

# Request kinds in the tallies.
REGISTER = "register session"
CHECK = "session check"
POLL_SECONDS = 0.02
# A session not read `revoked` this long after its user's deprovisioning counts as missed.
REVOCATION_TIMEOUT_SECONDS = 30.0
# Sessions of the capacity phase (one per active user, up to this many).
CHECK_SESSIONS = 1000
# Checks sent one at a time after the concurrent ones: the latency of a check on an unloaded
# API (at the sync's concurrency, latency is mostly queueing: concurrency / throughput).
SERIAL_CHECKS = 2000
# The targets printed next to the figures.
TARGETS = {"revoked_p99_s": 2.0, "checks_per_s": 5000, "check_p99_ms": 5.0}


def create_app_key(processes: Processes, tenant_id: str) -> str:
    issued = json.loads(processes.output(
        ["scimflow", "app-key", "create", "--tenant", tenant_id, "--label", "bench", "--json"]))
    return str(issued["key"])


def app_headers(key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json",
            "Authorization": f"Bearer {key}"}


def app_connector(port: int, key: str) -> Callable[[], Connection]:
    return lambda: Connection("127.0.0.1", port, app_headers(key))


def sessions_path(tenant_id: str) -> str:
    return f"/app/v1/tenants/{tenant_id}/sessions"


def session_path(tenant_id: str, session_id: str) -> str:
    return f"{sessions_path(tenant_id)}/{session_id}"


@dataclass
class RevocationWatch:
    """Registers a session before each deactivation, then follows it until it reads revoked."""

    port: int
    key: str
    tenant_id: str
    # Per user id, the session registered for it before its deactivation.
    registered: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    throttled: int = 0

    def register(self, user_id: str) -> None:
        """Blocking (the sync calls it in an executor thread before the PATCH)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", sessions_path(self.tenant_id),
                               json.dumps({"user": {"id": user_id}}),
                               app_headers(self.key))
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 201:
            self.failures.append(f"register for {user_id} -> {response.status} {body[:200]!r}")
            return
        self.registered[user_id] = str(json.loads(body)["id"])

    async def follow(self, acked: dict[str, float], deactivations: asyncio.Future[Any]) -> None:
        """Poll each registered session from its user's acknowledgement on, until the
        deactivations are over and every acknowledged one was followed."""
        connect = app_connector(self.port, self.key)
        following: dict[str, asyncio.Task[None]] = {}
        while True:
            for user_id, session_id in list(self.registered.items()):
                if user_id in acked and user_id not in following:
                    following[user_id] = asyncio.create_task(
                        self._poll(connect(), session_id, acked[user_id]))
            if deactivations.done() and {u for u in self.registered if u in acked} <= set(
                    following):
                break
            await asyncio.sleep(0.002)
        await asyncio.gather(*following.values())

    async def _poll(self, connection: Connection, session_id: str, acked_at: float) -> None:
        deadline = time.monotonic() + REVOCATION_TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline:
                response = await connection.request(
                    "GET", session_path(self.tenant_id, session_id))
                if response.status in (429, 503):
                    self.throttled += 1
                elif response.status != 200:
                    self.failures.append(f"check {session_id} -> {response.status} "
                                         f"{response.body[:200]!r}")
                    return
                elif response.json()["status"] == "revoked":
                    self.latencies.append(time.time() - acked_at)
                    self._check_reason(session_id, response)
                    return
                await asyncio.sleep(POLL_SECONDS)
            self.failures.append(f"session {session_id} not revoked within "
                                 f"{REVOCATION_TIMEOUT_SECONDS:g} s of its user's deprovisioning")
        finally:
            await connection.close()

    def _check_reason(self, session_id: str, response: Response) -> None:
        reason = response.json()["reason"]
        if reason != "deprovisioned":
            self.failures.append(f"session {session_id} revoked for {reason!r}")

    def figures(self, deactivations: int) -> dict[str, Any]:
        return {"count": len(self.latencies), "deactivations": deactivations,
                "registered": len(self.registered),
                "p50_s": measure.percentile(self.latencies, 0.50),
                "p99_s": measure.percentile(self.latencies, 0.99),
                "max_s": round(max(self.latencies), 3) if self.latencies else None,
                "target_p99_s": TARGETS["revoked_p99_s"], "throttled_429_503": self.throttled,
                "failures": self.failures[:5], "failure_count": len(self.failures)}


def check_phase(connect: Callable[[], Connection], tenant_id: str, user_ids: list[str], *,
                concurrency: int, checks: int,
                roots: Callable[[], dict[str, int]]) -> dict[str, Any]:
    """Sessions for up to CHECK_SESSIONS active users, then `checks` GETs of them."""
    registered = Tally()
    session_ids = asyncio.run(_register_all(connect, tenant_id, user_ids[:CHECK_SESSIONS],
                                            concurrency, registered))
    if not session_ids:
        raise RuntimeError(f"no session could be registered: {registered.failures[:3]}")
    paths = [session_path(tenant_id, session_ids[i % len(session_ids)]) for i in range(checks)]
    with CpuMeter(roots) as cpu:
        tally, wrong = get_sessions(connect, concurrency, paths, check=True)
    serial, serial_wrong = get_sessions(connect, 1, paths[:SERIAL_CHECKS], check=True)
    figures = rate_and_latency(tally, CHECK)
    return figures | {
        "sessions": len(session_ids), "wrong_answers": wrong + serial_wrong,
        "one_at_a_time": fine_latency(serial),
        "throttled_429_503": tally.throttled + serial.throttled,
        "server_errors_5xx": tally.server_errors + serial.server_errors,
        "failures": (registered.failures + tally.failures + serial.failures)[:5],
        "register_failures": len(registered.failures),
        "targets": {"per_s": TARGETS["checks_per_s"], "p99_ms": TARGETS["check_p99_ms"]},
        "cpu_us_per_check": _cpu_per_check(cpu.summary(), figures["requests"]),
        "cpu": cpu.summary()}


async def _register_all(connect: Callable[[], Connection], tenant_id: str, user_ids: list[str],
                        concurrency: int, tally: Tally) -> list[str]:
    driver, session_ids = Driver(tally), []

    async def one(connection: Connection, user_id: str) -> None:
        response = await driver.send(connection, REGISTER, "POST", sessions_path(tenant_id),
                                     body={"user": {"id": user_id}}, expect=(201,))
        if response.status == 201:
            session_ids.append(str(response.json()["id"]))

    await run_closed_loop(connect, concurrency, user_ids, one)
    return session_ids


def get_sessions(connect: Callable[[], Connection], concurrency: int, paths: list[str], *,
                 check: bool) -> tuple[Tally, int]:
    """GET every path at `concurrency`; with `check`, count answers that are not 200 and
    `active`. Returns the tally and that count."""
    tally = Tally()
    driver = Driver(tally)
    wrong = [0]

    async def one(connection: Connection, path: str) -> None:
        response = await driver.send(connection, CHECK, "GET", path, expect=(200,))
        if check:
            wrong[0] += response.status != 200 or response.json().get("status") != "active"

    async def all_gets() -> None:
        tally.started = time.perf_counter()
        await run_closed_loop(connect, concurrency, paths, one)
        tally.finished = time.perf_counter()

    asyncio.run(all_gets())
    return tally, wrong[0]


def fine_latency(tally: Tally) -> dict[str, Any]:
    """Rate and latency to 10 us: one at a time, a check takes well under a millisecond."""
    latencies = sorted(tally.latencies.get(CHECK, []))
    wall = tally.finished - tally.started

    def at(fraction: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1e3, 2)

    return {"per_s": round(len(latencies) / wall) if wall else 0, "p50_ms": at(0.50),
            "p99_ms": at(0.99), "requests": len(latencies)}


def baseline_checks(port: int, concurrency: int, checks: int) -> Tally:
    """The same load against the bare Falcon app: paths of the same shape (a tenant id and
    session ids of the API's lengths), the same headers."""
    tenant_id = str(uuid.uuid4())
    paths = [session_path(tenant_id, f"ses_{i:032x}") for i in range(checks)]
    return get_sessions(app_connector(port, "sfk_" + "0" * 43), concurrency, paths,
                        check=False)[0]


def _cpu_per_check(cpu: dict[str, Any], checks: int) -> dict[str, float]:
    return {role: round(f["cpu_s"] / checks * 1e6) for role, f in cpu["roles"].items()
            if checks and f["cpu_s"]}
