"""Poison-proof on the real deployments: what is acknowledged applies, and what fails anyway
stops nobody else.

On the production stack of docker-compose.yml (gunicorn API, Celery workers and beat, on a
fresh PostgreSQL database and Redis database 14, which no other system test uses) and on the
embedded `scimflow serve` (SQLite):

- writes the workers could never apply are refused when they are accepted, with the RFC 7644
  §3.12 status and `scimType` (a member without `value`, a group made its own member, NUL in
  any string, NUL in a filter, NUL in an id), and unique keys fold as one rule (`ΟΔΟΣ` is
  `οδοσ`, `STRASSE` is `Straße`; `İvan` is not `ivan`), while another tenant's writes apply
  meanwhile; afterwards nothing is pending and nothing is dead;
- an entry made to fail at apply (a command put in the journal with SQL, behind acceptance's
  back) is retried alone with backoff and becomes a dead letter naming the exception and the
  request id, visible to `scimflow status` and `scimflow dead-letters list`, while another
  tenant's 1,000 users apply, the poisoned tenant's other resources apply, the entries of the
  poisoned group behind it apply, and reads of that group never fail;
- while the poison is pending, reads of its group do not show the member it would add, and
  when good entries of the same group precede it in a batch, only the poison is charged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.store import journal
from scimflow.pipeline.store.models import JournalEntry
from tests.support.services import free_port, require_postgres, require_redis
from tests.system.idp import ERROR_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, patch_body
from tests.system.stack import (
    VENV_BIN,
    Stack,
    run_sql,
    running_stack,
    scim_client,
    stop_serving,
    wait_until_serving,
)

pytestmark = pytest.mark.timeout(300)

SCIMFLOW = str(VENV_BIN / "scimflow")
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
REDIS_DB = 14  # no other system test uses it (stack.py: 9, conftest: 10, uwsgi: 11, faults: 12)

# The retry budget of an entry that fails at apply: 3 attempts, backoff 0.2 s doubling, at most
# 1 s, so the dead letter is seconds away; the production code paths otherwise.
RETRY_ENV = {
    "SCIMFLOW_REFERENCE_RETRY_LIMIT": "3",
    "SCIMFLOW_RETRY_BASE_SECONDS": "0.2",
    "SCIMFLOW_RETRY_MAX_SECONDS": "1",
}

HEALTHY_USERS = 1_000
CONCURRENCY = 16
# After tenant B's last acknowledgement, all its users must be applied within this bound. On
# this machine the API, not the workers, is the bottleneck of a sync (test_faults.py): the
# workers keep pace with the acknowledgements, so the backlog left at the last one is small and
# drains in a second or two. The poisoned entry costs at most three failed attempts of one
# resource in three batches. If the poison failed its whole batch (the bug this guards against),
# B's users in the same batches would never apply, so any bound catches it; 60 s leaves room for
# a slow CI machine without hiding that.
APPLY_BOUND_SECONDS = 60.0
# Three attempts with backoff of at most 1 s each, re-rung by the drain's own `ring_later`
# (or by beat's sweeper, every second, for work older than 2 s): a few seconds even behind B's
# backlog, whose batches share turns with tenant A (store/claim.py).
DEAD_LETTER_BOUND_SECONDS = 60.0


class Target(Protocol):
    """A running scimflow: the production stack or the embedded server."""

    def create_tenant(self, name: str) -> dict[str, str]: ...
    def client(self, token: str, **options: Any) -> httpx.Client: ...
    def sql(self, query: str, **params: Any) -> list[Any]: ...
    def wait_until_applied(self, timeout: float = 120) -> None: ...


# --- helpers ---------------------------------------------------------------------------------


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, (response.request.method, response.request.url,
                                         response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


def user_body(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}


def group_body(display_name: str, members: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
    if members:
        body["members"] = [{"value": member} for member in members]
    return body


def search_body(filter_: str) -> dict[str, Any]:
    return {"schemas": [SEARCH_SCHEMA], "filter": filter_}


def journal_statuses(target: Target, tenant_id: str) -> dict[str, int]:
    return {row[0]: int(row[1]) for row in target.sql(
        "SELECT status, count(*) FROM journal WHERE tenant_id = :t GROUP BY status", t=tenant_id
    )}


def dead_letter_count(target: Target) -> int:
    return int(target.sql("SELECT count(*) FROM dead_letters")[0][0])


def user_names(target: Target, tenant_id: str) -> set[str]:
    return {row[0] for row in target.sql(
        "SELECT user_name FROM users WHERE tenant_id = :t", t=tenant_id
    )}


def group_names(target: Target, tenant_id: str) -> set[str]:
    return {row[0] for row in target.sql(
        "SELECT display_name FROM groups WHERE tenant_id = :t", t=tenant_id
    )}


# --- the requests the workers could never apply ----------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A request that must be refused at acceptance, and how (RFC 7644 §3.12)."""

    label: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    status: int = 400
    scim_type: str | None = "invalidValue"


def bad_requests(user_id: str, group_id: str) -> list[Bad]:
    nul = "\x00"
    return [
        Bad("group PATCH: a member without value", "PATCH", f"/Groups/{group_id}",
            patch_body({"op": "add", "path": "members", "value": [{"display": "x"}]})),
        Bad("group PATCH: replace members with one without value", "PATCH",
            f"/Groups/{group_id}",
            patch_body({"op": "replace", "path": "members", "value": [{"display": "x"}]})),
        Bad("group PATCH, path-less: a member without value", "PATCH", f"/Groups/{group_id}",
            patch_body({"op": "add", "value": {"members": [{"display": "x"}]}})),
        Bad("group POST: a member without value", "POST", "/Groups",
            {"schemas": [GROUP_SCHEMA], "displayName": "nameless", "members": [{"display": "x"}]}),
        Bad("group PATCH: the group as its own member", "PATCH", f"/Groups/{group_id}",
            patch_body({"op": "add", "path": "members", "value": [{"value": group_id}]})),
        Bad("group PUT: the group as its own member", "PUT", f"/Groups/{group_id}",
            group_body("staff", [group_id])),
        Bad("group PATCH: NUL in members[].display", "PATCH", f"/Groups/{group_id}",
            patch_body({"op": "add", "path": "members",
                        "value": [{"value": user_id, "display": f"x{nul}"}]})),
        Bad("group PATCH: NUL in displayName", "PATCH", f"/Groups/{group_id}",
            patch_body({"op": "replace", "path": "displayName", "value": f"g{nul}"})),
        Bad("user POST: NUL in userName", "POST", "/Users", user_body(f"nul{nul}@example.com")),
        Bad("user POST: NUL in displayName", "POST", "/Users",
            user_body("bob@example.com", displayName=f"a{nul}b")),
        Bad("user POST: NUL in name.givenName", "POST", "/Users",
            user_body("bob@example.com", name={"givenName": nul})),
        Bad("user POST: NUL in externalId", "POST", "/Users",
            user_body("bob@example.com", externalId=f"e{nul}")),
        Bad("user PATCH: NUL in title", "PATCH", f"/Users/{user_id}",
            patch_body({"op": "replace", "path": "title", "value": f"t{nul}"})),
        Bad("user PATCH: NUL in nickName", "PATCH", f"/Users/{user_id}",
            patch_body({"op": "replace", "path": "nickName", "value": f"t{nul}"})),
        Bad("user PUT: NUL in displayName", "PUT", f"/Users/{user_id}",
            user_body("ann@example.com", displayName=nul)),
        Bad("GET /Users: NUL in a filter", "GET", "/Users",
            params={"filter": f'userName eq "a{nul}"'}, scim_type="invalidFilter"),
        Bad("GET /Groups: NUL in a filter", "GET", "/Groups",
            params={"filter": f'displayName sw "{nul}"'}, scim_type="invalidFilter"),
        Bad("POST /Users/.search: NUL in a filter", "POST", "/Users/.search",
            search_body(f'userName eq "a{nul}"'), scim_type="invalidFilter"),
        Bad("POST /Groups/.search: NUL in a filter", "POST", "/Groups/.search",
            search_body(f'displayName co "{nul}"'), scim_type="invalidFilter"),
        # RFC 7644 §3.12: a 404 carries no scimType.
        Bad("GET /Users/abc%00", "GET", "/Users/abc%00", status=404, scim_type=None),
        Bad("GET /Groups/abc%00", "GET", "/Groups/abc%00", status=404, scim_type=None),
        Bad("PATCH /Users/abc%00", "PATCH", "/Users/abc%00",
            patch_body({"op": "replace", "path": "title", "value": "t"}),
            status=404, scim_type=None),
        Bad("PUT /Users/abc%00", "PUT", "/Users/abc%00", user_body("zed@example.com"),
            status=404, scim_type=None),
        Bad("DELETE /Groups/abc%00", "DELETE", "/Groups/abc%00", status=404, scim_type=None),
    ]


def refusal_errors(client: httpx.Client, bad: Bad) -> list[str]:
    """How the answer to `bad` departs from the SCIM error it must be (empty: it does not)."""
    response = client.request(bad.method, bad.path, json=bad.body, params=bad.params)
    answer = f"{bad.label}: {response.status_code} {response.text[:300]}"
    if response.status_code != bad.status:
        return [f"expected {bad.status}, got {answer}"]
    body = response.json()
    errors = []
    if body.get("schemas") != [ERROR_SCHEMA] or body.get("status") != str(bad.status):
        errors.append(f"not a SCIM error body: {answer}")
    if body.get("scimType") != bad.scim_type:
        errors.append(f"expected scimType {bad.scim_type}, got {answer}")
    return errors


# (first, second, the same key?): the second is 409 uniqueness exactly when it is the same key.
USER_NAME_PAIRS = [("οδοσ", "ΟΔΟΣ", True), ("Straße", "STRASSE", True), ("ivan", "İvan", False)]
GROUP_NAMES = [("istanbul", 201), ("İstanbul", 201), ("ISTANBUL", 409)]


@dataclass
class Refused:
    """Tenant A after the bad requests: its ids and what must be applied."""

    user_id: str
    group_id: str
    users: set[str] = field(default_factory=set)  # userNames that must be applied
    groups: set[str] = field(default_factory=set)  # displayNames that must be applied


def send_bad_requests(target: Target, token: str) -> Refused:
    """Tenant A sends every bad request (each refused), then the folding pairs."""
    with target.client(token) as client:
        user = created(client.post("/Users", json=user_body("ann@example.com")))
        group = created(client.post("/Groups", json=group_body("staff", [user["id"]])))
        refused = Refused(user["id"], group["id"], {"ann@example.com"}, {"staff"})

        errors = [e for bad in bad_requests(user["id"], group["id"])
                  for e in refusal_errors(client, bad)]

        for first, second, same in USER_NAME_PAIRS:
            kept = created(client.post("/Users", json=user_body(first)))
            refused.users.add(first)
            answer = client.post("/Users", json=user_body(second))
            if same:
                if answer.status_code != 409 or answer.json().get("scimType") != "uniqueness":
                    errors.append(f"{second!r} after {first!r}: want 409 uniqueness, "
                                  f"got {answer.status_code} {answer.text[:200]}")
                # The IdP's existence check agrees with the uniqueness answer.
                found = client.get("/Users", params={"filter": f'userName eq "{second}"'})
                ids = [r["id"] for r in found.json().get("Resources", [])]
                if found.status_code != 200 or ids != [kept["id"]]:
                    errors.append(f'userName eq "{second}" must find {first!r}: '
                                  f"{found.status_code} {found.text[:200]}")
            else:
                if answer.status_code != 201:
                    errors.append(f"{second!r} after {first!r}: want 201, "
                                  f"got {answer.status_code} {answer.text[:200]}")
                refused.users.add(second)

        for name, status in GROUP_NAMES:
            answer = client.post("/Groups", json=group_body(name))
            if answer.status_code != status or (
                status == 409 and answer.json().get("scimType") != "uniqueness"
            ):
                errors.append(f"group {name!r}: want {status}, "
                              f"got {answer.status_code} {answer.text[:200]}")
            if status == 201:
                refused.groups.add(name)
        for name, _ in GROUP_NAMES[:2]:
            found = client.get("/Groups", params={"filter": f'displayName eq "{name}"'})
            names = [r["displayName"] for r in found.json().get("Resources", [])]
            if found.status_code != 200 or names != [name]:
                errors.append(f'displayName eq "{name}" must find exactly it: '
                              f"{found.status_code} {found.text[:200]}")
    assert not errors, "\n".join(errors)
    return refused


def assert_group_reads_answer(target: Target, token: str, group_id: str) -> dict[str, Any]:
    """GET /Groups, GET /Groups/{id} and POST /Groups/.search all answer 200."""
    with target.client(token) as client:
        listing = client.get("/Groups")
        one = client.get(f"/Groups/{group_id}")
        search = client.post("/Groups/.search", json=search_body(f'id eq "{group_id}"'))
    for response in (listing, one, search):
        assert response.status_code == 200, (response.request.url, response.text[:500])
    assert search.json()["totalResults"] == 1
    group: dict[str, Any] = one.json()
    return group


def assert_refused_writes_left_nothing(
    target: Target, tenant_id: str, token: str, refused: Refused
) -> None:
    """Everything is applied, nothing dead, the folding pairs' both spellings applied."""
    assert journal_statuses(target, tenant_id) == {
        "applied": len(refused.users) + len(refused.groups)
    }
    assert user_names(target, tenant_id) == refused.users
    assert group_names(target, tenant_id) == refused.groups
    group = assert_group_reads_answer(target, token, refused.group_id)
    assert [m["value"] for m in group["members"]] == [refused.user_id]


@dataclass
class Writer:
    """Tenant B writing users while something else happens, at least `minimum` of them."""

    target: Target
    token: str
    minimum: int
    stop: threading.Event = field(default_factory=threading.Event)
    ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, workers: int = 8) -> None:
        with self.target.client(self.token) as client, ThreadPoolExecutor(workers) as pool:
            counter = iter(range(10**9))

            def one() -> None:
                while not (self.stop.is_set() and len(self.ids) >= self.minimum):
                    index = next(counter)
                    response = client.post("/Users", json=user_body(f"b{index:05}@example.com"))
                    with self.lock:
                        if response.status_code == 201:
                            self.ids.append(response.json()["id"])
                        else:
                            self.failures.append(f"{response.status_code} {response.text[:200]}")
                            return

            for future in [pool.submit(one) for _ in range(workers)]:
                future.result()


def while_b_writes(target: Target, token: str, action: Callable[[], Refused]) -> tuple[
    Refused, Writer
]:
    """Run `action` while tenant B keeps writing users."""
    writer = Writer(target, token, minimum=100)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        while not writer.ids and thread.is_alive():
            time.sleep(0.01)
        result = action()
        during = len(writer.ids)
    finally:
        writer.stop.set()
        thread.join(120)
    assert not thread.is_alive()
    assert not writer.failures, writer.failures[:5]
    assert len(writer.ids) > during, "tenant B must still be writing when A's requests end"
    return result, writer


# --- 1. refused at acceptance, on the production stack ---------------------------------------


@pytest.fixture
def poison_stack(tmp_path: Path) -> Iterator[Stack]:
    """API (gunicorn), one Celery worker (2 processes) and beat, a retry budget of seconds."""
    require_postgres()
    require_redis()
    with running_stack(tmp_path, redis_db=REDIS_DB, extra_env=RETRY_ENV) as running:
        yield running


def refuse_while_another_tenant_writes(target: Target) -> None:
    """Tenant A's bad writes are refused while tenant B writes users; then all of B applies,
    A left nothing behind, and nothing is dead."""
    a = target.create_tenant("refused")
    b = target.create_tenant("busy")
    refused, writer = while_b_writes(
        target, b["token"], lambda: send_bad_requests(target, a["token"])
    )
    target.wait_until_applied(timeout=60)
    assert_refused_writes_left_nothing(target, a["tenant_id"], a["token"], refused)
    assert journal_statuses(target, b["tenant_id"]) == {"applied": len(writer.ids)}
    assert len(user_names(target, b["tenant_id"])) == len(writer.ids)
    assert dead_letter_count(target) == 0
    print(f"\ntenant B wrote {len(writer.ids)} users meanwhile; all applied, none dead")


def test_writes_the_workers_could_not_apply_are_refused_while_another_tenant_applies(
    poison_stack: Stack,
) -> None:
    refuse_while_another_tenant_writes(poison_stack)
    worker_log = poison_stack.log("worker1")
    assert "apply failed" not in worker_log and "Traceback" not in worker_log, worker_log[-3000:]


# --- 2. an entry that fails at apply anyway ---------------------------------------------------


def inject_poison(stack: Stack, tenant_id: str, group_id: str, request_id: str) -> int:
    """A Group PATCH adding a member without `value`, journaled with SQL behind acceptance's
    back (acceptance refuses it, test 1), as a command from an older version or a bug would be.
    """
    command = Command(CommandKind.PATCH, "Group", group_id, operations=(
        {"op": "add", "path": "members", "value": [{"display": "x"}]},
    ))
    values = journal.entry_values(tenant_id, command, now=datetime.now(UTC), request_id=request_id)
    engine = create_engine(stack.database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            return int(connection.execute(
                insert(JournalEntry).values(values).returning(JournalEntry.seq)
            ).scalar_one())
    finally:
        engine.dispose()


@dataclass
class Load:
    """Tenant B's 1,000 users over HTTP, `CONCURRENCY` at a time; when each was acknowledged."""

    stack: Stack
    token: str
    acked: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        with self.stack.client(self.token, limits=limits) as client, \
                ThreadPoolExecutor(CONCURRENCY) as pool:
            def one(index: int) -> None:
                response = client.post("/Users", json=user_body(f"user{index:04}@example.com"))
                with self.lock:
                    if response.status_code == 201:
                        self.acked.append(time.monotonic())
                        self.ids.append(response.json()["id"])
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")

            list(pool.map(one, range(HEALTHY_USERS)))


@dataclass
class Reader:
    """Reads of the poisoned group, over and over, from its injection until told to stop."""

    stack: Stack
    token: str
    group_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[float, str, int]] = field(default_factory=list)

    def run(self) -> None:
        reads: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", "/Groups", None),
            ("GET", f"/Groups/{self.group_id}", None),
            ("POST", "/Groups/.search", search_body(f'id eq "{self.group_id}"')),
        ]
        with self.stack.client(self.token) as client:
            while not self.stop.is_set():
                for method, path, body in reads:
                    started = time.monotonic()
                    status = client.request(method, path, json=body).status_code
                    self.answers.append((started, f"{method} {path}", status))
                time.sleep(0.02)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until `predicate()`; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


@dataclass
class TenantA:
    """The poisoned tenant: the group the poison names, and its other resources."""

    tenant_id: str
    token: str
    ann: str
    staff: str
    cy: str = ""
    other: str = ""


def provision_a(stack: Stack) -> TenantA:
    tenant = stack.create_tenant("poisoned")
    with stack.client(tenant["token"]) as client:
        ann = created(client.post("/Users", json=user_body("ann@example.com")))["id"]
        staff = created(client.post("/Groups", json=group_body("staff", [ann])))["id"]
    return TenantA(tenant["tenant_id"], tenant["token"], ann, staff)


def write_behind_the_poison(stack: Stack, a: TenantA) -> None:
    """The poisoned group renamed (journaled behind the poison; it rings tenant A's workers),
    and writes of tenant A to other resources."""
    with stack.client(a.token) as client:
        renamed = client.patch(f"/Groups/{a.staff}", json=patch_body(
            {"op": "replace", "path": "displayName", "value": "staff (renamed)"}))
        assert renamed.status_code == 204, renamed.text
        a.cy = created(client.post("/Users", json=user_body("cy@example.com")))["id"]
        titled = client.patch(f"/Users/{a.ann}", json=patch_body(
            {"op": "replace", "path": "title", "value": "Engineer"}))
        assert titled.status_code == 200, titled.text
        a.other = created(client.post("/Groups", json=group_body("other", [a.ann, a.cy])))["id"]


def write_after_the_dead_letter(stack: Stack, a: TenantA) -> None:
    with stack.client(a.token) as client:
        joined = client.patch(f"/Groups/{a.staff}", json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": a.cy}]}))
        assert joined.status_code == 204, joined.text


def assert_dead_letter(stack: Stack, a: TenantA, seq: int, request_id: str) -> str:
    """One dead letter, after the retry budget, naming the exception and the request id."""
    entry = stack.sql("SELECT status, attempts, last_error FROM journal WHERE seq = :s", s=seq)[0]
    assert entry.status == "dead" and entry.attempts == 3, tuple(entry)
    letters = stack.sql(
        "SELECT tenant_id, resource_id, reason FROM dead_letters WHERE journal_seq = :s", s=seq
    )
    assert len(letters) == 1 and dead_letter_count(stack) == 1
    letter = letters[0]
    assert (letter.tenant_id, letter.resource_id) == (a.tenant_id, a.staff)
    assert re.match(r"apply failed: \w*(Error|Exception)\b", letter.reason), letter.reason
    assert request_id in letter.reason, letter.reason
    assert entry.last_error == letter.reason
    reason: str = letter.reason
    return reason


def assert_operator_sees_it(
    stack: Stack, a: TenantA, healthy_id: str, seq: int, *, request_id: str, reason: str
) -> None:
    """`scimflow status --json` and `scimflow dead-letters list` (both forms) show it."""
    status = {row["tenant_id"]: row for row in json.loads(
        stack.run([SCIMFLOW, "status", "--json"])
    )["tenants"]}
    poisoned, healthy = status[a.tenant_id], status[healthy_id]
    assert poisoned["dead_letters"] == 1 and poisoned["backlog"] == 0, poisoned
    assert poisoned["retrying"] == 0, poisoned
    assert healthy["dead_letters"] == 0 and healthy["backlog"] == 0, healthy
    listed = json.loads(stack.run([SCIMFLOW, "dead-letters", "list", "--json"]))
    assert [(d["journal_seq"], d["tenant_id"], d["resource_id"], d["reason"])
            for d in listed] == [(seq, a.tenant_id, a.staff, reason)]
    listed_text = stack.run([SCIMFLOW, "dead-letters", "list"])
    assert request_id in listed_text and "apply failed:" in listed_text, listed_text


def assert_the_rest_of_a_applied(stack: Stack, a: TenantA) -> None:
    """Everything but the poison applied, the poisoned group's later entries too."""
    t = {"t": a.tenant_id}
    # ann, staff, the rename, cy, ann's title, other, cy joining staff; and the poison.
    assert journal_statuses(stack, a.tenant_id) == {"applied": 7, "dead": 1}
    users = {row.id: row for row in stack.sql(
        "SELECT id, data FROM users WHERE tenant_id = :t", **t)}
    assert set(users) == {a.ann, a.cy} and users[a.ann].data.get("title") == "Engineer"
    groups = dict(stack.sql("SELECT id, display_name FROM groups WHERE tenant_id = :t", **t))
    assert groups == {a.staff: "staff (renamed)", a.other: "other"}
    memberships = set(stack.sql(
        "SELECT group_id, member_id FROM memberships WHERE tenant_id = :t", **t))
    assert memberships == {(a.staff, a.ann), (a.staff, a.cy), (a.other, a.ann), (a.other, a.cy)}
    group = assert_group_reads_answer(stack, a.token, a.staff)
    assert group["displayName"] == "staff (renamed)"
    assert sorted(m["value"] for m in group["members"]) == sorted([a.ann, a.cy])


def assert_b_applied_exactly(stack: Stack, tenant_id: str, load: Load) -> None:
    assert not load.failures, load.failures[:5]
    assert len(load.ids) == HEALTHY_USERS
    assert journal_statuses(stack, tenant_id) == {"applied": HEALTHY_USERS}
    applied = {row[0] for row in stack.sql(
        "SELECT id FROM users WHERE tenant_id = :t", t=tenant_id)}
    assert applied == set(load.ids)


def applied_while_retrying(stack: Stack, tenant_id: str, seq: int) -> int:
    """Entries of `tenant_id` applied between the poison's injection and its dead letter."""
    return int(stack.sql(
        "SELECT count(*) FROM journal j, dead_letters d, journal p "
        "WHERE d.journal_seq = :s AND p.seq = :s AND j.tenant_id = :t "
        "AND j.applied_at > p.created_at AND j.applied_at < d.created_at",
        s=seq, t=tenant_id,
    )[0][0])


def test_a_poisoned_entry_dead_letters_alone_while_another_tenant_syncs_1000_users(
    poison_stack: Stack,
) -> None:
    stack = poison_stack
    a = provision_a(stack)
    b = stack.create_tenant("healthy")
    stack.wait_until_applied(timeout=60)
    request_id = f"req-poison-{uuid.uuid4().hex[:8]}"

    load = Load(stack, b["token"])
    loading = threading.Thread(target=load.run, daemon=True)
    load_started = time.monotonic()
    loading.start()
    wait_for(lambda: len(load.acked) >= 100, 60, "tenant B's first 100 acknowledgements")

    seq = inject_poison(stack, a.tenant_id, a.staff, request_id)
    poisoned_at = time.monotonic()
    reader = Reader(stack, a.token, a.staff)
    reading = threading.Thread(target=reader.run, daemon=True)
    reading.start()
    write_behind_the_poison(stack, a)

    attempts_seen: set[int] = set()

    def dead() -> bool:
        row = stack.sql("SELECT status, attempts FROM journal WHERE seq = :s", s=seq)[0]
        attempts_seen.add(row.attempts)
        return bool(row.status == "dead")

    dead_at = wait_for(dead, DEAD_LETTER_BOUND_SECONDS, "the poisoned entry's dead letter")
    acked_when_dead = len(load.acked)
    write_after_the_dead_letter(stack, a)
    reader.stop.set()
    reading.join(30)

    loading.join(180)
    assert not loading.is_alive(), "tenant B's load did not finish"
    last_ack = max(load.acked)
    backlog_at_last_ack = stack.backlog()

    def b_applied() -> bool:
        rows = stack.sql("SELECT count(*) FROM users WHERE tenant_id = :t", t=b["tenant_id"])
        return int(rows[0][0]) == HEALTHY_USERS

    b_done = wait_for(b_applied, APPLY_BOUND_SECONDS, f"tenant B's {HEALTHY_USERS} users applied")
    stack.wait_until_applied(timeout=60)
    meanwhile = applied_while_retrying(stack, b["tenant_id"], seq)
    failed_reads = [answer for answer in reader.answers if answer[2] != 200]
    reads_while_pending = sum(1 for started, _, _ in reader.answers if started < dead_at)
    print(
        f"\ntenant B: {HEALTHY_USERS} users acknowledged in {last_ack - load_started:.1f}s, "
        f"backlog at the last acknowledgement {backlog_at_last_ack}, all applied "
        f"{b_done - last_ack:.2f}s after it (bound {APPLY_BOUND_SECONDS:.0f}s); "
        f"{meanwhile} of B's entries applied while the poison was retried\n"
        f"poison: dead letter {dead_at - poisoned_at:.2f}s after injection (attempts seen "
        f"{sorted(attempts_seen)}; B had {acked_when_dead} of {HEALTHY_USERS} acknowledged "
        f"then); {len(reader.answers)} reads of its group, {reads_while_pending} while it was "
        f"pending, {len(failed_reads)} failed"
    )

    assert_b_applied_exactly(stack, b["tenant_id"], load)
    assert meanwhile > 0, "B must apply while the poison is retried, not only after"
    reason = assert_dead_letter(stack, a, seq, request_id)
    print(f"reason: {reason}")
    assert_operator_sees_it(stack, a, b["tenant_id"], seq, request_id=request_id, reason=reason)
    assert_the_rest_of_a_applied(stack, a)
    assert not failed_reads, failed_reads[:10]
    assert reads_while_pending >= 3, reader.answers[:10]
    # The worker logged the failure with its request id, and kept running.
    assert stack.processes["worker1"].poll() is None
    assert request_id in stack.log("worker1")


def stop_workers(stack: Stack) -> None:
    """No worker and no sweeper: whatever is pending stays pending."""
    stack.kill("worker1", signal.SIGTERM)
    stack.kill("beat", signal.SIGTERM)


def start_workers(stack: Stack) -> None:
    stack.start_worker("worker1")
    stack.start_beat()  # its sweeper re-rings the pending work nobody rang


def poisoned_group_reads(stack: Stack, a: TenantA) -> list[httpx.Response]:
    with stack.client(a.token) as client:
        return [
            client.get(f"/Groups/{a.staff}"),
            client.get(f"/Groups/{a.staff}", params={"attributes": "members"}),
            client.get("/Groups"),
            client.get("/Groups", params={"filter": f'members.value eq "{a.ann}"'}),
            client.post("/Groups/.search", json=search_body(f'id eq "{a.staff}"')),
            client.get(f"/Users/{a.ann}"),
        ]


def wait_until_dead(stack: Stack, seq: int) -> float:
    return wait_for(
        lambda: stack.sql("SELECT status FROM journal WHERE seq = :s", s=seq)[0][0] == "dead",
        DEAD_LETTER_BOUND_SECONDS, f"journal entry {seq} dead-lettered",
    )


def test_reads_of_a_group_whose_pending_entry_is_poisoned_answer(poison_stack: Stack) -> None:
    """The group is applied; with no worker running, the poison stays pending and every read
    of the group is projected through it (read-your-writes): each must answer 200. Once a
    worker dead-letters it, the group reads as applied."""
    stack = poison_stack
    a = provision_a(stack)
    stack.wait_until_applied(timeout=60)
    stop_workers(stack)
    seq = inject_poison(stack, a.tenant_id, a.staff, "req-poison-pending")
    for response in poisoned_group_reads(stack, a):
        assert response.status_code == 200, (response.request.url, response.text[:500])

    start_workers(stack)
    wait_until_dead(stack, seq)
    stack.wait_until_applied(timeout=60)
    group = assert_group_reads_answer(stack, a.token, a.staff)
    assert [m["value"] for m in group["members"]] == [a.ann]


def test_reads_do_not_show_a_member_the_worker_will_never_apply(poison_stack: Stack) -> None:
    """`apply.project_members` skips a pending command the worker will dead-letter, "as it
    will be skipped there"; a member without `value` must not be shown while it is pending."""
    stack = poison_stack
    a = provision_a(stack)
    stack.wait_until_applied(timeout=60)
    stop_workers(stack)
    inject_poison(stack, a.tenant_id, a.staff, "req-poison-phantom")
    one = poisoned_group_reads(stack, a)[0]
    assert one.status_code == 200, one.text
    members = one.json()["members"]
    assert all("value" in member for member in members), (
        f"GET /Groups/{{id}} shows a member the worker will dead-letter: {members}"
    )


def test_only_the_failing_entry_is_charged_when_good_entries_precede_it(
    poison_stack: Stack,
) -> None:
    """A group acknowledged (201) and, before any worker applied it, the poison behind it:
    the worker applies both entries in one batch. The create must apply and only the poison
    become a dead letter, under its own request id."""
    stack = poison_stack
    stop_workers(stack)
    a = provision_a(stack)
    create_seq, create_request = stack.sql(
        "SELECT seq, request_id FROM journal WHERE resource_id = :g", g=a.staff)[0]
    seq = inject_poison(stack, a.tenant_id, a.staff, "req-poison-behind")
    start_workers(stack)
    wait_until_dead(stack, seq)
    stack.wait_until_applied(timeout=60)

    entries = {row.seq: (row.status, row.last_error) for row in stack.sql(
        "SELECT seq, status, last_error FROM journal WHERE resource_id = :g", g=a.staff)}
    letters = {row.journal_seq: row.reason for row in stack.sql(
        "SELECT journal_seq, reason FROM dead_letters")}
    assert entries[create_seq][0] == "applied", (
        f"the acknowledged create (request {create_request}) was charged with the poison "
        f"behind it: {entries}; dead letters {letters}"
    )
    assert list(letters) == [seq] and "req-poison-behind" in letters[seq], letters
    groups = dict(stack.sql("SELECT id, display_name FROM groups WHERE tenant_id = :t",
                            t=a.tenant_id))
    assert groups == {a.staff: "staff"}


# --- 3. the embedded server -------------------------------------------------------------------


@dataclass
class Embedded:
    """`scimflow serve` on a SQLite file: API and in-process worker in one process."""

    workdir: Path
    port: int = field(default_factory=free_port)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir / 'scimflow.sqlite3'}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMFLOW_")}
        env.update({
            "SCIMFLOW_DATABASE_URL": self.database_url,
            "SCIMFLOW_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "SCIMFLOW_PASSWORD_ITERATIONS": "1000",
            "SCIMFLOW_LOG_LEVEL": "WARNING",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **RETRY_ENV,
        })
        return env

    def create_tenant(self, name: str) -> dict[str, str]:
        done = subprocess.run([SCIMFLOW, "tenant", "create", name, "--json"], env=self.env,
                              cwd=self.workdir, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        tenant: dict[str, str] = json.loads(done.stdout)
        return tenant

    def client(self, token: str, **options: Any) -> httpx.Client:
        return scim_client(f"http://127.0.0.1:{self.port}/scim/v2", token, **options)

    def sql(self, query: str, **params: Any) -> list[Any]:
        return run_sql(self.database_url, query, **params)

    def wait_until_applied(self, timeout: float = 120) -> None:
        wait_for(
            lambda: self.sql("SELECT count(*) FROM journal WHERE status = 'pending'")[0][0] == 0,
            timeout, "the embedded worker's backlog drained",
        )


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    server = Embedded(tmp_path)
    subprocess.run([SCIMFLOW, "migrate"], env=server.env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [SCIMFLOW, "serve", "--host", "127.0.0.1", "--port", str(server.port)],
            env=server.env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{server.port}/healthz", process, log)
        yield server
        assert process.poll() is None, log.read_text()[-3000:]
        served = log.read_text(errors="replace")
        assert "apply failed" not in served and "Traceback" not in served, served[-3000:]
    finally:
        stop_serving(process)


def test_the_embedded_server_refuses_the_same_writes_while_another_tenant_applies(
    embedded: Embedded,
) -> None:
    refuse_while_another_tenant_writes(embedded)
