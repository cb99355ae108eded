"""Nothing lost, nothing duplicated: real processes, killed and cut off mid-sync.

Each test runs the compose commands natively (gunicorn API, Celery workers, beat) on a fresh
PostgreSQL database, provisions one tenant over HTTP the way an IdP's initial sync does (1,000
users, some renamed and deactivated, 20 groups of 25 members written while their members are
still being applied), breaks something while the backlog is draining, and then checks the
applied directory against what the IdP was told, to the row:

- exactly the 1,000 users, each at `version` == the number of its accepted writes;
- exactly the 500 memberships;
- every journal entry applied, none dead, and its events written exactly once (an entry
  applied twice would have written them twice): one event per user entry, at the version it
  made; one `group.created` per group and one `group.member_added` per membership; positions
  1..N without a gap (a killed transaction hands none out);
- the API never answered 5xx: every write it acknowledged was committed before it answered.

The simulated IdP retries a 5xx or a dropped connection the way real ones do (a retried POST
is an idempotent replay, a retried PATCH `replace` is a no-op), so a 5xx is recorded as a
finding and the data checks still run; the 5xx assertion comes last.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import patch_body
from tests.support.services import free_port, require_postgres, require_redis, unavailable
from tests.system.stack import Stack, running_stack

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

WAVES = 20  # one group per wave
USERS_PER_WAVE = 50  # 1,000 users
MEMBERS_PER_GROUP = 25
MEMBERS_IN_POST = 10  # the rest are added by three PATCHes of 5
CONCURRENCY = 16


# --- the simulated IdP -----------------------------------------------------------------------


@dataclass
class Failure:
    method: str
    path: str
    status: int | None  # None: no response (timeout, connection error)
    detail: str
    at: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: {self.detail[:300]}"


class Idp:
    """An IdP's SCIM client: `CONCURRENCY` connections, retrying 5xx and dropped requests."""

    def __init__(self, stack: Stack, token: str, *, attempts: int = 6) -> None:
        self._stack = stack
        self._token = token
        self._attempts = attempts
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self.failures: list[Failure] = []
        # (sent, answered) of every request that got an answer below 500.
        self.answered: list[tuple[float, float]] = []

    @property
    def requests(self) -> int:
        return len(self.answered) + len(self.failures)

    @property
    def slowest(self) -> float:
        return max((end - start for start, end in self.answered), default=0.0)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._stack.client(self._token, timeout=30)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def send(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self._attempts):
            started = time.monotonic()
            try:
                response = self._client().request(method, path, json=body)
            except httpx.HTTPError as error:
                self._failed(Failure(method, path, None, repr(error), at=started))
            else:
                if response.status_code < 500:
                    with self._lock:
                        self.answered.append((started, time.monotonic()))
                    assert response.status_code in (200, 201, 204), (method, path, response.text)
                    result: dict[str, Any] = response.json() if response.content else {}
                    return result
                self._failed(Failure(method, path, response.status_code, response.text, started))
            time.sleep(0.5 * (attempt + 1))
        raise AssertionError(f"{method} {path} failed {self._attempts} times: {self.failures[-1]}")

    def _failed(self, failure: Failure) -> None:
        with self._lock:
            self.failures.append(failure)

    def close(self) -> None:
        for client in self._clients:
            client.close()


@dataclass
class Sync:
    """What the IdP sent, and so what the directory must hold once everything is applied."""

    user_ids: dict[int, str] = field(default_factory=dict)
    group_ids: dict[int, str] = field(default_factory=dict)

    @staticmethod
    def renamed(index: int) -> bool:
        return index % 4 == 0

    @staticmethod
    def deactivated(index: int) -> bool:
        return index % 10 == 0

    def writes_of_user(self, index: int) -> int:
        return 1 + self.renamed(index) + self.deactivated(index)

    @staticmethod
    def members_of(wave: int) -> list[int]:
        return [wave * USERS_PER_WAVE + 2 * k for k in range(MEMBERS_PER_GROUP)]

    def expected_members(self) -> set[tuple[str, str]]:
        return {
            (self.group_ids[wave], self.user_ids[index])
            for wave in range(WAVES)
            for index in self.members_of(wave)
        }


def provision_user(idp: Idp, sync: Sync, index: int) -> None:
    body = {
        "schemas": [USER_SCHEMA],
        "userName": f"user{index:04}@example.com",
        "externalId": f"00u{index:04}",
        "displayName": f"User {index}",
        "active": True,
    }
    user_id = idp.send("POST", "/Users", body)["id"]
    sync.user_ids[index] = user_id
    if sync.renamed(index):
        rename = patch_body({"op": "replace", "path": "displayName", "value": f"Renamed {index}"})
        idp.send("PATCH", f"/Users/{user_id}", rename)
    if sync.deactivated(index):
        leave = patch_body({"op": "replace", "path": "active", "value": False})
        idp.send("PATCH", f"/Users/{user_id}", leave)


def provision_group(idp: Idp, sync: Sync, wave: int) -> None:
    members = [sync.user_ids[index] for index in sync.members_of(wave)]
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": f"Group {wave:02}",
        "externalId": f"00g{wave:02}",
        "members": [{"value": m} for m in members[:MEMBERS_IN_POST]],
    }
    group_id = idp.send("POST", "/Groups", body)["id"]
    sync.group_ids[wave] = group_id
    rest = members[MEMBERS_IN_POST:]
    for start in range(0, len(rest), 5):
        values = [{"value": m} for m in rest[start : start + 5]]
        idp.send("PATCH", f"/Groups/{group_id}", patch_body(
            {"op": "add", "path": "members", "value": values}
        ))


def provision(idp: Idp, sync: Sync, after_wave: Callable[[int], None]) -> None:
    """Waves of 50 users; each wave's group is written, with members that may not be applied
    yet, while the next wave's users are posted. `after_wave(w)` runs between waves."""
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        pending_groups: list[Future[None]] = []
        for wave in range(WAVES):
            users = [
                pool.submit(provision_user, idp, sync, index)
                for index in range(wave * USERS_PER_WAVE, (wave + 1) * USERS_PER_WAVE)
            ]
            for future in users:
                future.result()
            pending_groups.append(pool.submit(provision_group, idp, sync, wave))
            after_wave(wave)
        for future in pending_groups:
            future.result()


# --- checks ----------------------------------------------------------------------------------


def assert_converged(stack: Stack, tenant_id: str, sync: Sync) -> None:
    """The applied directory is exactly what the IdP was acknowledged, applied exactly once."""
    t = {"t": tenant_id}
    statuses = dict(stack.sql(
        "SELECT status, count(*) FROM journal WHERE tenant_id = :t GROUP BY status", **t
    ))
    assert set(statuses) == {"applied"}, statuses
    assert stack.sql("SELECT count(*) FROM dead_letters WHERE tenant_id = :t", **t)[0][0] == 0

    entries = Counter({
        row.resource_id: row.n for row in stack.sql(
            "SELECT resource_id, count(*) AS n FROM journal WHERE tenant_id = :t "
            "GROUP BY resource_id", **t)
    })
    users = {row.id: row for row in stack.sql(
        "SELECT id, user_name, version, active, display_name FROM users WHERE tenant_id = :t", **t
    )}
    assert len(users) == len(sync.user_ids) == WAVES * USERS_PER_WAVE
    assert set(users) == set(sync.user_ids.values())
    wrong = []
    for index, user_id in sync.user_ids.items():
        user = users[user_id]
        want_name = f"Renamed {index}" if sync.renamed(index) else f"User {index}"
        if (
            user.version != sync.writes_of_user(index)
            or entries[user_id] != sync.writes_of_user(index)
            or user.user_name != f"user{index:04}@example.com"
            or user.display_name != want_name
            or user.active is sync.deactivated(index)
        ):
            wrong.append((index, tuple(user), entries[user_id]))
    assert not wrong, f"{len(wrong)} users wrong, e.g. {wrong[:5]}"

    groups = {row.id: row.version for row in stack.sql(
        "SELECT id, version FROM groups WHERE tenant_id = :t", **t
    )}
    assert set(groups) == set(sync.group_ids.values())
    # 1 POST + 3 PATCHes, plus any PATCH the IdP had to retry (adding a member is idempotent).
    assert all(groups[g] == entries[g] >= 4 for g in groups), (groups, entries)
    memberships = stack.sql(
        "SELECT group_id, member_id FROM memberships WHERE tenant_id = :t", **t
    )
    assert len(memberships) == len(set(memberships))
    assert set(memberships) == sync.expected_members()

    assert_events_exactly_once(stack, tenant_id, sync, entries)


def assert_events_exactly_once(
    stack: Stack, tenant_id: str, sync: Sync, entries: Counter[str]
) -> None:
    """Every change told once: an entry applied twice would have written its events twice."""
    t = {"t": tenant_id}
    # Every entry of a user changed it: one event each (a deactivation is one
    # `user.deprovisioned`, not also a `user.updated`), each at the version it made.
    user_events = {row.resource_id: (row.n, row.versions) for row in stack.sql(
        "SELECT resource_id, count(*) AS n,"
        " count(DISTINCT payload->'resource'->>'version') AS versions"
        " FROM outbox WHERE tenant_id = :t AND resource_type = 'User' GROUP BY resource_id", **t)}
    assert user_events == {
        user_id: (entries[user_id], entries[user_id]) for user_id in sync.user_ids.values()
    }
    by_type = dict(stack.sql(
        "SELECT event_type, count(*) FROM outbox WHERE tenant_id = :t GROUP BY event_type", **t))
    assert by_type == {
        "user.created": len(sync.user_ids),
        "user.updated": sum(1 for i in sync.user_ids if sync.renamed(i)),
        "user.deprovisioned": sum(1 for i in sync.user_ids if sync.deactivated(i)),
        "group.created": len(sync.group_ids),
        "group.member_added": len(sync.expected_members()),
    }
    # Members are told from what the statements changed: each membership once, whatever the
    # IdP retried and however often a killed batch was applied again.
    added = stack.sql(
        "SELECT resource_id, payload->'member'->>'value' FROM outbox"
        " WHERE tenant_id = :t AND event_type = 'group.member_added'", **t)
    assert Counter(tuple(row) for row in added) == Counter(sync.expected_members())
    # Positions: 1..N, no gap, and the counter at N.
    first, last, count = stack.sql("SELECT min(id), max(id), count(*) FROM outbox")[0]
    assert (first, last) == (1, count)
    assert stack.sql("SELECT last FROM event_positions")[0][0] == count


def assert_no_5xx(stack: Stack, idp: Idp) -> None:
    if idp.failures:
        api_log = stack.log("api")
        errors = [line for line in api_log.splitlines() if "ERROR" in line or "Error" in line]
        shown = "\n".join(str(f) for f in idp.failures[:5])
        raise AssertionError(
            f"{len(idp.failures)} of {idp.requests} requests failed (the IdP retried them):\n"
            f"{shown}\n--- api log (errors) ---\n" + "\n".join(errors[:40])
        )


# --- SIGKILL a worker ------------------------------------------------------------------------


def applied(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM journal WHERE status = 'applied'")[0][0])


def signal_group(stack: Stack, name: str, sig: int) -> None:
    os.killpg(stack.processes[name].pid, sig)


@pytest.mark.timeout(600)
def test_sigkill_of_a_worker_mid_sync_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """worker1 is SIGKILLed while it is draining a backlog of several hundred entries.

    On this machine the API, not the workers, is the bottleneck, so a backlog is built on
    purpose: both workers are paused (SIGSTOP) for a few waves, then worker1 alone resumes, and
    it is killed as soon as its first batch has committed, in the middle of its drain task.
    worker2 resumes after the kill, and a replacement worker3 joins later.
    """
    require_postgres()
    require_redis()
    started = time.monotonic()
    with running_stack(tmp_path, workers=2, concurrency=2, redis_db=12) as stack:
        tenant = stack.create_tenant("acme")
        idp = Idp(stack, tenant["token"])
        sync = Sync()
        seen: dict[str, int] = {}

        def faults(wave: int) -> None:
            if wave == 4:
                for name in ("worker1", "worker2"):
                    signal_group(stack, name, signal.SIGSTOP)
            if wave == 9:
                before = applied(stack)
                seen["backlog_before"] = stack.backlog()
                signal_group(stack, "worker1", signal.SIGCONT)
                deadline = time.monotonic() + 30
                while applied(stack) == before and time.monotonic() < deadline:
                    time.sleep(0.01)
                stack.kill("worker1", signal.SIGKILL)  # the worker and its pool children
                seen["backlog_at_kill"] = stack.backlog()
                seen["applied_by_worker1"] = applied(stack) - before
                signal_group(stack, "worker2", signal.SIGCONT)
            if wave == 14:
                stack.start_worker("worker3", concurrency=2)

        try:
            provision(idp, sync, faults)
        finally:
            idp.close()
        stack.wait_until_applied(timeout=120)

        assert seen["backlog_before"] >= 200, seen
        assert seen["applied_by_worker1"] > 0, seen  # worker1 was draining when it died
        assert seen["backlog_at_kill"] > 0, seen  # ... and had work left: mid-sync
        assert_converged(stack, tenant["tenant_id"], sync)
        assert_no_5xx(stack, idp)
        assert "Traceback" not in stack.log("worker2"), stack.log("worker2")[-3000:]
    assert time.monotonic() - started < 180


# --- Redis restarted empty -------------------------------------------------------------------


class RedisServer:
    """A private, non-persistent redis-server, to kill and restart empty on one port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self.restarted = threading.Event()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self._workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            ["redis-server", "--save", "", "--appendonly", "no", "--port", str(self.port),
             "--bind", "127.0.0.1"],
            cwd=self._workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 10
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@contextmanager
def private_redis(workdir: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not on PATH")
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RestartPolicy:
    """`restart: unless-stopped` of docker-compose.yml: a worker or beat that exits is started
    again, as Docker would, so a crash costs availability, never the sync; each exit is kept."""

    def __init__(self, stack: Stack, names: tuple[str, ...]) -> None:
        self._stack = stack
        self._names = names
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.exits: list[str] = []

    def __enter__(self) -> RestartPolicy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(10)

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for name in self._names:
                code = self._stack.processes[name].poll()
                if code is None:
                    continue
                lines = self._stack.log(name).splitlines()
                fatal = [line for line in lines if "CRITICAL" in line or "Unrecoverable" in line]
                self.exits.append(f"{name} exited with {code}: {fatal[-1:] or lines[-3:]}")
                if name == "beat":
                    self._stack.start_beat()
                else:
                    self._stack.start_worker(name, concurrency=2)


OUTAGE_SECONDS = 3.0


@pytest.mark.timeout(600)
def test_redis_restarted_empty_mid_sync_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """The broker is SIGKILLed mid-sync and comes back empty three seconds later.

    Every doorbell queued or unacknowledged at that moment is gone, and the API's doorbells
    during the outage cannot be sent; the journal is the truth, so the sweeper (beat) must
    re-ring the tenant and the sync must converge exactly. The API must keep answering 2xx:
    its writes are committed before it rings.
    """
    require_postgres()
    started = time.monotonic()
    with private_redis(tmp_path) as broker, running_stack(
        tmp_path, workers=2, concurrency=2, broker_url=broker.url
    ) as stack:
        tenant = stack.create_tenant("acme")
        idp = Idp(stack, tenant["token"])
        sync = Sync()
        outage: dict[str, float] = {}

        def restart_later() -> None:
            time.sleep(OUTAGE_SECONDS)
            broker.start()  # empty: every queued doorbell and unacked message is gone
            outage["end"] = time.monotonic()
            broker.restarted.set()

        def faults(wave: int) -> None:
            if wave == 6:
                outage["backlog"] = stack.backlog()
                outage["start"] = time.monotonic()
                broker.kill()
                # The IdP keeps writing during the outage: the next waves' doorbells fail.
                threading.Thread(target=restart_later, daemon=True).start()

        with RestartPolicy(stack, ("worker1", "worker2", "beat")) as policy:
            try:
                provision(idp, sync, faults)
            finally:
                idp.close()
            assert broker.restarted.wait(30)
            stack.wait_until_applied(timeout=120)
            time.sleep(1)  # a worker that lost the broker and is shutting down shows it now

        during = [
            (sent, answered) for sent, answered in idp.answered
            if outage["start"] + 0.2 < sent and answered < outage["end"] - 0.2
        ]
        assert len(during) >= 10, "the outage must be hit by the IdP's writes"
        assert_converged(stack, tenant["tenant_id"], sync)
        assert_no_5xx(stack, idp)
        assert idp.slowest < 10, f"a request took {idp.slowest:.1f}s: the API hung on a ring"
        # Workers and beat ride the outage out (workers/redis_transport.py): none exited.
        assert policy.exits == []
    assert time.monotonic() - started < 180
