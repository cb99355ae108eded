"""IdP simulators: Okta and Microsoft Entra ID provisioning a tenant over real HTTP.

Each simulator sends the request shapes and sequences that `/work/shared/idp-notes.md` and the
captured bodies in `tests/samples/idp/` (catalogued in `tests/samples/INDEX.md`) document:

- `OktaSimulator` (O1): `userName eq` existence check with `startIndex=1&count=100`, the Okta
  create body, profile updates as GET then PUT of the whole object, deactivation as a path-less
  `replace` of `{"active": false}`, group push as POST with `members: []` then one PATCH per
  batch of members: `remove` ops `members[value eq "…"]` followed by `add` `members`. Group
  push is a job of its own: a group is pushed as soon as every user it names is provisioned,
  while other users are still being created.
- `EntraSimulator` (E1, E2, E3, E7; default mode, no `aadOptscim062020`): `externalId eq`
  matching (spaces as `+`), core + enterprise create, a second round for `manager` as a bare
  string, capitalised multi-op PATCH, disable as `"False"`, groups matched with
  `excludedAttributes=members`, created without members, then `Add` of `members` 10 per request
  with `"$ref": null`, and `Remove` with a value array. E3's cycle order: users, references,
  then groups.

Like the IdPs, a `429` or `503` carrying an integer `Retry-After` is waited out and the same
request is sent again (Okta delays only the throttled request; Entra suspends all of the
client's traffic for that long). Nothing else is retried: every other non-2xx response is
recorded with its body in `Traffic.failures`, and the step that got it stops.

Each simulator also keeps `sent`: per userName, the stored form of what it last sent (the body
minus what the service does not store, with PATCHes applied), which is what the directory must
end up holding.
"""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import httpx

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json; charset=utf-8"
# Top-level attributes of a resource body the service does not store: read-only ones
# (RFC 7643 §2.2, §3.1) and `schemas`.
NOT_STORED = frozenset({"schemas", "id", "meta", "groups"})
THROTTLE_STATUSES = frozenset({429, 503})

T = TypeVar("T")


# --- the directory an IdP pushes ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedUser:
    index: int
    user_name: str
    given_name: str
    family_name: str
    department: str
    employee_number: str
    manager: int | None  # index of the manager (Entra writes it in a second round)

    @property
    def nickname(self) -> str:
        """Entra's default matching attribute (mailNickname → externalId)."""
        return self.user_name.split("@", 1)[0]

    @property
    def okta_id(self) -> str:
        """Okta's own user id (`00u…`, 20 characters), sent as externalId."""
        return f"00u{uuid.uuid5(uuid.NAMESPACE_DNS, self.user_name).hex[:17]}"

    @property
    def updated_family_name(self) -> str:
        """The family name a profile update changes to (both IdPs change it)."""
        return f"{self.family_name}-Married"

    @property
    def updated_email(self) -> str:
        return f"renamed.{self.user_name}"


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    index: int
    display_name: str
    object_id: str  # Entra's group objectId, sent as externalId
    members: tuple[int, ...]  # the members the group must end with
    transient: tuple[int, ...]  # added during the push, then removed again
    bystander: int  # never a member: its removal is a no-op


@dataclass(frozen=True, slots=True)
class Directory:
    users: tuple[PlannedUser, ...]
    groups: tuple[PlannedGroup, ...]

    def memberships(self) -> set[tuple[str, str]]:
        """(group displayName, member userName) pairs the directory must end with."""
        return {
            (group.display_name, self.users[member].user_name)
            for group in self.groups
            for member in group.members
        }


_GIVEN = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Zoë")
_FAMILY = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
           "Perlman", "Łukasiewicz", "O'Brien", "Müller")
_DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "Research")


def plan_directory(
    *,
    users: int,
    groups: int,
    members_per_group: int,
    domain: str,
    transient_per_group: int = 1,
    seed: int = 20240601,
) -> Directory:
    """A deterministic directory: users with managers, groups with overlapping members."""
    rng = random.Random(seed)
    planned = tuple(
        PlannedUser(
            index=i,
            user_name=f"user{i:05d}@{domain}",
            given_name=_GIVEN[i % len(_GIVEN)],
            family_name=f"{_FAMILY[i % len(_FAMILY)]}{i}",
            department=_DEPARTMENTS[i % len(_DEPARTMENTS)],
            employee_number=f"E{100000 + i}",
            manager=i // 10 if i >= 10 else None,
        )
        for i in range(users)
    )
    planned_groups = []
    needed = members_per_group + transient_per_group + 1
    # Each group draws its users from a window that slides along the users, so groups (whose
    # windows overlap) become complete one after another while users are being created.
    window = min(users, 10 * needed)
    for g in range(groups):
        start = g * (users - window) // max(groups - 1, 1)
        chosen = rng.sample(range(start, start + window), needed)
        planned_groups.append(
            PlannedGroup(
                index=g,
                display_name=f"Team {g:03d} ({domain})",
                object_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{domain}/group/{g}")),
                members=tuple(chosen[:members_per_group]),
                transient=tuple(chosen[members_per_group:-1]),
                bystander=chosen[-1],
            )
        )
    return Directory(planned, tuple(planned_groups))


# --- the wire -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """A request that did not succeed: what was sent and what came back."""

    request: str
    status: int  # 0: no response (transport error)
    body: str
    sent: Any = None

    def __str__(self) -> str:
        return f"{self.request} -> {self.status} {self.body[:500]} (sent {self.sent!r:.300})"


@dataclass
class Traffic:
    """Everything a simulator sent and got, tallied across its threads."""

    requests: int = 0
    writes: int = 0  # successful POST/PUT/PATCH/DELETE
    statuses: Counter[int] = field(default_factory=Counter)
    honoured: Counter[int] = field(default_factory=Counter)  # 429/503 waited out and retried
    throttled_reads: int = 0  # of which on GET
    waited_seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # exceptions that stopped a step
    stale_reads: list[str] = field(default_factory=list)  # read-your-writes misses
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str, status: int) -> None:
        with self._lock:
            self.requests += 1
            self.statuses[status] += 1
            if method != "GET" and 200 <= status < 300:
                self.writes += 1

    def honour(self, method: str, status: int, seconds: int) -> None:
        with self._lock:
            self.honoured[status] += 1
            self.throttled_reads += method == "GET"
            self.waited_seconds += seconds

    def fail(self, failure: Failure) -> None:
        with self._lock:
            self.failures.append(failure)

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def stale(self, message: str) -> None:
        with self._lock:
            self.stale_reads.append(message)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class IdpError(Exception):
    """A step got an answer the IdP cannot continue from (already recorded as a failure)."""


class ScimClient:
    """Sends SCIM requests the way an IdP does, honouring `Retry-After` on 429/503."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        headers: dict[str, str],
        suspend_all: bool,
        max_waits: int = 20,
    ) -> None:
        self._http = http
        self._headers = headers
        self._suspend_all = suspend_all
        self._max_waits = max_waits
        self._resume_at = 0.0
        self._lock = threading.Lock()
        self.traffic = Traffic()

    def send(self, method: str, url: str, body: Any = None) -> httpx.Response:
        waits = 0
        while True:
            self._wait_while_suspended()
            try:
                response = self._http.request(method, url, json=body, headers=self._headers)
            except httpx.HTTPError as ex:
                self.traffic.fail(Failure(f"{method} {url}", 0, repr(ex), body))
                raise
            self.traffic.count(method, response.status_code)
            delay = retry_after(response)
            throttled = response.status_code in THROTTLE_STATUSES
            if throttled and delay is not None and waits < self._max_waits:
                waits += 1
                self.traffic.honour(method, response.status_code, delay)
                self._suspend(delay)
                continue
            if not response.is_success:
                self.traffic.fail(Failure(f"{method} {url}", response.status_code,
                                          response.text, body))
            return response

    def expect(
        self, method: str, url: str, body: Any = None, *, status: Collection[int]
    ) -> dict[str, Any]:
        """Send, and return the JSON body (empty for 204) if the status is one expected."""
        response = self.send(method, url, body)
        if response.status_code not in status:
            if response.is_success:  # a 2xx the IdP does not expect is a failure too
                self.traffic.fail(Failure(f"{method} {url}", response.status_code,
                                          response.text, body))
            raise IdpError(f"{method} {url} -> {response.status_code}")
        if response.status_code == 204 or not response.content:
            return {}
        parsed: dict[str, Any] = response.json()
        return parsed

    def _suspend(self, seconds: int) -> None:
        if not self._suspend_all:
            time.sleep(seconds)
            return
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def _wait_while_suspended(self) -> None:
        if self._suspend_all:
            pause = self._resume_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def retry_after(response: httpx.Response) -> int | None:
    """The integer delay-seconds of `Retry-After`; None when absent or not an integer."""
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def fire_together(
    scim: ScimClient, method: str, url: str, bodies: Sequence[Any]
) -> list[httpx.Response]:
    """Send one request per body from as many threads, released at the same moment."""
    start = threading.Barrier(len(bodies))

    def one(body: Any) -> httpx.Response:
        start.wait()
        return scim.send(method, url, body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- the simulators -------------------------------------------------------------------------


@dataclass
class Timings:
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.phases.values())


class IdpSimulator:
    """The sequence both IdPs share; subclasses supply the request shapes."""

    name = "idp"
    headers: dict[str, str] = {"Accept": SCIM_MEDIA_TYPE, "Content-Type": SCIM_MEDIA_TYPE}
    # Entra suspends all of a client's provisioning on 429 (E4); Okta delays the throttled job.
    suspend_all = False
    # Entra's cycle pushes groups after every user (E3); Okta's group push is a job of its own
    # that runs while users are still being assigned (O1).
    groups_overlap_users = False
    # Statuses the IdP accepts for a PATCH of a user and of a group.
    user_patch_ok: frozenset[int] = frozenset({200, 204})
    group_patch_ok: frozenset[int] = frozenset({200, 204})

    def __init__(
        self, http: httpx.Client, *, concurrency: int = 16, member_batch: int = 10
    ) -> None:
        self.scim = ScimClient(http, headers=dict(self.headers), suspend_all=self.suspend_all)
        self.concurrency = concurrency
        self.member_batch = member_batch
        self.user_ids: dict[str, str] = {}  # userName -> id
        self.group_ids: dict[str, str] = {}  # displayName -> id
        self.sent: dict[str, dict[str, Any]] = {}  # userName -> stored form of what was sent
        self.matched: list[str] = []  # users an existence check found before any POST
        self.timings = Timings()

    @property
    def traffic(self) -> Traffic:
        return self.scim.traffic

    # The whole initial sync.

    def initial_sync(
        self,
        directory: Directory,
        *,
        churn: Collection[int] = (),
        before_churn: Callable[[PlannedUser, str], None] | None = None,
        resync: Collection[int] = (),
    ) -> None:
        """Provision `directory`.

        Users in `churn` get a profile update and then a deactivation right after their
        creation, while the rest of the sync goes on. Users in `resync` get one more profile
        update at the very end, once their groups have been pushed (an Okta PUT then echoes
        their `groups`).
        """

        def onboard(user: PlannedUser) -> None:
            user_id = self.provision_user(user)
            if user.index in churn:
                if before_churn is not None:
                    before_churn(user, user_id)
                self.update_profile(user)
                self.deactivate(user)

        def push(group: PlannedGroup) -> None:
            self.push_group(group, directory)

        def reference(user: PlannedUser) -> None:
            self.write_references(user, directory)

        managed = [user for user in directory.users if user.manager is not None]
        if self.groups_overlap_users:
            self.timed("users+groups", lambda: self.users_with_groups_when_ready(
                directory, onboard))
            self.timed("references", lambda: self.run(managed, reference))
        else:
            self.timed("users", lambda: self.run(directory.users, onboard))
            self.timed("references", lambda: self.run(managed, reference))
            self.timed("groups", lambda: self.run(directory.groups, push))
        resynced = [directory.users[i] for i in sorted(resync)]
        self.timed("resync", lambda: self.run(resynced, self.update_profile))

    def users_with_groups_when_ready(
        self, directory: Directory, onboard: Callable[[PlannedUser], None]
    ) -> None:
        """Onboard the users; push each group as soon as every user it names is provisioned.

        Users are fed to the pool at most `concurrency` at a time, so a group that becomes
        ready is pushed right away, next to the users still being created.
        """
        waiting = {g.index: {*g.members, *g.transient, g.bystander} for g in directory.groups}
        slots = threading.Semaphore(self.concurrency)
        lock = threading.Lock()
        user_futures: list[Future[None]] = []
        group_futures: list[Future[None]] = []

        with ThreadPoolExecutor(self.concurrency) as pool:

            def onboard_then_release_groups(user: PlannedUser) -> None:
                try:
                    onboard(user)
                finally:
                    slots.release()
                with lock:
                    for group in directory.groups:
                        needed = waiting[group.index]
                        if user.index in needed:
                            needed.discard(user.index)
                            if not needed:
                                group_futures.append(
                                    pool.submit(self.push_group, group, directory)
                                )

            for user in directory.users:
                slots.acquire()
                user_futures.append(pool.submit(onboard_then_release_groups, user))
            wait(user_futures)  # after this, no group is submitted any more
            wait(group_futures)
        self.collect([*user_futures, *group_futures])

    def timed(self, phase: str, work: Callable[[], None]) -> None:
        started = time.monotonic()
        work()
        self.timings.phases[phase] = time.monotonic() - started

    def run(self, items: Iterable[T], task: Callable[[T], object]) -> None:
        """Run `task` for every item on the thread pool; a failing item never stops others."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(task, item) for item in items]
        self.collect(futures)

    def collect(self, futures: Iterable[Future[Any]]) -> None:
        for future in futures:
            error = future.exception()
            if error is not None:
                self.traffic.error(f"{type(error).__name__}: {error}")

    # Users

    def provision_user(self, user: PlannedUser) -> str:
        """Existence check, POST, then the same look-up again: it must find the new user."""
        lookup = self.user_lookup(user)
        found = self.scim.expect("GET", lookup, status={200})
        if found["totalResults"] > 0:
            self.matched.append(user.user_name)
            user_id = str(found["Resources"][0]["id"])
        else:
            body = self.create_body(user)
            created = self.scim.expect("POST", "/Users", body, status={201})
            user_id = str(created["id"])
            self.sent[user.user_name] = self.stored_form(body)
            again = self.scim.expect("GET", lookup, status={200})
            if [r.get("id") for r in again["Resources"]] != [user_id]:
                self.traffic.stale(f"{lookup} right after POST {user_id}: {again}")
        self.user_ids[user.user_name] = user_id
        return user_id

    def user_lookup(self, user: PlannedUser) -> str:
        raise NotImplementedError

    def create_body(self, user: PlannedUser) -> dict[str, Any]:
        raise NotImplementedError

    def stored_form(self, body: dict[str, Any]) -> dict[str, Any]:
        """What the service stores of a body: no read-only attributes, no empty values."""
        return {
            k: copy.deepcopy(v) for k, v in body.items() if k not in NOT_STORED and v != []
        }

    def update_profile(self, user: PlannedUser) -> None:
        raise NotImplementedError

    def deactivate(self, user: PlannedUser) -> None:
        raise NotImplementedError

    def write_references(self, user: PlannedUser, directory: Directory) -> None:
        """Reference attributes written once every user exists (Entra's second round)."""

    # Groups

    def push_group(self, group: PlannedGroup, directory: Directory) -> None:
        raise NotImplementedError

    def member_id(self, directory: Directory, index: int) -> str:
        return self.user_ids[directory.users[index].user_name]


class OktaSimulator(IdpSimulator):
    """An Okta OIN SCIM 2.0 app (O1): PUT for profile updates, PATCH only for (de)activation."""

    name = "okta"
    groups_overlap_users = True
    headers = {"Accept": SCIM_MEDIA_TYPE, "Content-Type": SCIM_MEDIA_TYPE,
               "User-Agent": "Okta SCIM Client 1.0.0"}

    def user_lookup(self, user: PlannedUser) -> str:
        query = quote(f'userName eq "{user.user_name}"', safe="")
        return f"/Users?filter={query}&startIndex=1&count=100"

    def create_body(self, user: PlannedUser) -> dict[str, Any]:
        return {
            "schemas": [USER_SCHEMA],
            "userName": user.user_name,
            "name": {"givenName": user.given_name, "familyName": user.family_name},
            "emails": [{"primary": True, "value": user.user_name, "type": "work"}],
            "displayName": f"{user.given_name} {user.family_name}",
            "locale": "en-US",
            "externalId": user.okta_id,
            "groups": [],
            "password": f"pw-{user.okta_id}",
            "active": True,
        }

    def update_profile(self, user: PlannedUser) -> None:
        """GET the user, change the mapped attributes, PUT the whole object back."""
        user_id = self.user_ids[user.user_name]
        current = self.scim.expect("GET", f"/Users/{user_id}", status={200})
        current["name"]["familyName"] = user.updated_family_name
        current["displayName"] = f"{user.given_name} {user.updated_family_name}"
        current.setdefault("groups", [])
        self.scim.expect("PUT", f"/Users/{user_id}", current, status={200})
        password = self.sent[user.user_name]["password"]  # never returned, so kept
        self.sent[user.user_name] = {**self.stored_form(current), "password": password}

    def deactivate(self, user: PlannedUser) -> None:
        user_id = self.user_ids[user.user_name]
        body = patch_body({"op": "replace", "value": {"active": False}})
        self.scim.expect("PATCH", f"/Users/{user_id}", body, status=self.user_patch_ok)
        self.sent[user.user_name]["active"] = False

    def push_group(self, group: PlannedGroup, directory: Directory) -> None:
        """POST with `members: []`, then one PATCH per batch: `remove` ops, then `add`.

        The transient members ride along in the first batch and are removed by the last
        one; the bystander's removal in every PATCH is a no-op.
        """
        body = {"schemas": [GROUP_SCHEMA], "displayName": group.display_name, "members": []}
        group_id = str(self.scim.expect("POST", "/Groups", body, status={201})["id"])
        self.group_ids[group.display_name] = group_id
        chunks = batches(group.members, self.member_batch)
        for number, chunk in enumerate(chunks):
            first, last = number == 0, number == len(chunks) - 1
            removed = [group.bystander]
            added = list(chunk)
            if len(chunks) > 1 and first:
                added += group.transient
            if len(chunks) > 1 and last:
                removed += group.transient
            operations: list[dict[str, Any]] = [
                {"op": "remove", "path": f'members[value eq "{self.member_id(directory, i)}"]'}
                for i in removed
            ]
            operations.append({
                "op": "add",
                "path": "members",
                "value": [
                    {"value": self.member_id(directory, i),
                     "display": directory.users[i].user_name}
                    for i in added
                ],
            })
            self.scim.expect("PATCH", f"/Groups/{group_id}", patch_body(*operations),
                             status=self.group_patch_ok)


class EntraSimulator(IdpSimulator):
    """A Microsoft Entra ID non-gallery `scim` job in default mode (no aadOptscim062020)."""

    name = "entra"
    suspend_all = True
    group_patch_ok = frozenset({204})  # E1: group PATCH should answer 204

    def user_lookup(self, user: PlannedUser) -> str:
        query = quote_plus(f'externalId eq "{user.nickname}"')
        return f"/Users?filter={query}"

    def create_body(self, user: PlannedUser) -> dict[str, Any]:
        return {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": user.nickname,
            "userName": user.user_name,
            "active": True,
            "displayName": f"{user.given_name} {user.family_name}",
            "emails": [{"primary": True, "type": "work", "value": user.user_name}],
            "meta": {"resourceType": "User"},
            "name": {
                "formatted": f"{user.given_name} {user.family_name}",
                "familyName": user.family_name,
                "givenName": user.given_name,
            },
            "roles": [],
            ENTERPRISE_SCHEMA: {
                "department": user.department,
                "employeeNumber": user.employee_number,
            },
        }

    def update_profile(self, user: PlannedUser) -> None:
        """Only the attributes that differ, one capitalised op each (E1 multi-valued update)."""
        user_id = self.user_ids[user.user_name]
        body = patch_body(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": user.updated_email},
            {"op": "Replace", "path": "name.familyName", "value": user.updated_family_name},
        )
        self.scim.expect("PATCH", f"/Users/{user_id}", body, status=self.user_patch_ok)
        sent = self.sent[user.user_name]
        sent["emails"][0]["value"] = user.updated_email
        sent["name"]["familyName"] = user.updated_family_name

    def deactivate(self, user: PlannedUser) -> None:
        user_id = self.user_ids[user.user_name]
        body = patch_body({"op": "Replace", "path": "active", "value": "False"})
        self.scim.expect("PATCH", f"/Users/{user_id}", body, status=self.user_patch_ok)
        self.sent[user.user_name]["active"] = False

    def write_references(self, user: PlannedUser, directory: Directory) -> None:
        """`manager` as a bare string id at the URN-qualified path (E7)."""
        assert user.manager is not None
        user_id = self.user_ids[user.user_name]
        manager_id = self.member_id(directory, user.manager)
        body = patch_body(
            {"op": "Add", "path": f"{ENTERPRISE_SCHEMA}:manager", "value": manager_id}
        )
        self.scim.expect("PATCH", f"/Users/{user_id}", body, status=self.user_patch_ok)
        self.sent[user.user_name][ENTERPRISE_SCHEMA]["manager"] = {"value": manager_id}

    def push_group(self, group: PlannedGroup, directory: Directory) -> None:
        """Match, create without members, `Add` 10 per PATCH, `Remove` with a value array."""
        query = quote_plus(f'displayName eq "{group.display_name}"')
        found = self.scim.expect(
            "GET", f"/Groups?excludedAttributes=members&filter={query}", status={200}
        )
        if found["totalResults"] > 0:
            raise IdpError(f"group {group.display_name} exists before it was created: {found}")
        body = {
            "schemas": [GROUP_SCHEMA],
            "externalId": group.object_id,
            "displayName": group.display_name,
            "meta": {"resourceType": "Group"},
        }
        group_id = str(self.scim.expect("POST", "/Groups", body, status={201})["id"])
        self.group_ids[group.display_name] = group_id
        for chunk in batches((*group.transient, *group.members), self.member_batch):
            values = [{"$ref": None, "value": self.member_id(directory, i)} for i in chunk]
            self.scim.expect("PATCH", f"/Groups/{group_id}",
                             patch_body({"op": "Add", "path": "members", "value": values}),
                             status=self.group_patch_ok)
        removed = [{"value": self.member_id(directory, i)}
                   for i in (*group.transient, group.bystander)]
        self.scim.expect("PATCH", f"/Groups/{group_id}",
                         patch_body({"op": "Remove", "path": "members", "value": removed}),
                         status=self.group_patch_ok)
