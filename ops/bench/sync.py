"""An IdP's initial sync, in the request shapes of a `IdpRequests`: per user an existence GET then
POST; deactivations sent while it runs, as soon as each user exists; then the groups, each
created and filled by member PATCHes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scimflow.ops.bench.http import Connection
from scimflow.ops.bench.idp_requests import SCIM_BASE, IdpRequests
from scimflow.ops.bench.load import Driver, run_closed_loop
from scimflow.ops.bench.plan import SyncPlan

# Request kinds in the tally (their latencies are reported per kind).
EXISTENCE_GET = "existence GET"
POST_USERS = "POST /Users"


@dataclass
class SyncState:
    """The ids the sync learnt, and a future per user resolved when its POST is answered (with
    its id, or None when the POST failed), for requests that need a user to exist."""

    user_ids: dict[int, str] = field(default_factory=dict)
    group_ids: dict[int, str] = field(default_factory=dict)
    created: dict[int, asyncio.Future[str | None]] = field(default_factory=dict)
    # Per deactivated user id, when its PATCH's 2xx was received (wall clock: compared with
    # the webhook receiver's arrivals, in another process).
    deprovision_acked: dict[str, float] = field(default_factory=dict)
    # When each user's POST was answered 201 (wall clock).
    users_acked_at: list[float] = field(default_factory=list)
    progress: Callable[[str, int, int], None] = lambda phase, done, total: None

    def creation(self, index: int) -> asyncio.Future[str | None]:
        if index not in self.created:
            self.created[index] = asyncio.get_running_loop().create_future()
        return self.created[index]


async def push_users(
    plan: SyncPlan, idp: IdpRequests, driver: Driver, connect: Callable[[], Connection], *,
    concurrency: int, state: SyncState,
) -> None:
    async def one(connection: Connection, index: int) -> None:
        await driver.send(connection, EXISTENCE_GET, "GET",
                          idp.existence_path(plan.user_name(index)))
        manager = plan.manager_of(index) if idp.sends_manager else None
        # The manager's index is lower, so its POST was sent first: this waits for its answer.
        manager_id = None if manager is None else await state.creation(manager)
        response = await driver.send(connection, POST_USERS, "POST", f"{SCIM_BASE}/Users",
                                     body=idp.user_body(plan, index, manager_id),
                                     expect=(201,))
        user_id = str(response.json()["id"]) if response.status == 201 else None
        if user_id is not None:
            state.user_ids[index] = user_id
            state.users_acked_at.append(time.time())
        state.creation(index).set_result(user_id)
        state.progress("users", len(state.user_ids), plan.users)

    await run_closed_loop(connect, concurrency, range(plan.users), one)


async def deactivate_during_sync(
    plan: SyncPlan, idp: IdpRequests, driver: Driver, connection: Connection, *,
    state: SyncState, before_deactivating: Callable[[str], Any],
) -> None:
    """Deactivate a sample of users, each as soon as it exists."""
    for index in plan.deactivated():
        user_id = await state.creation(index)
        if user_id is None:
            continue  # its POST failed, and is already counted as a failure
        await asyncio.get_running_loop().run_in_executor(None, before_deactivating, user_id)
        response = await driver.send(connection, "deactivate PATCH", "PATCH",
                                     f"{SCIM_BASE}/Users/{user_id}",
                                     body=idp.deactivation_body(plan, index))
        if 200 <= response.status < 300:
            state.deprovision_acked[user_id] = time.time()
    await connection.close()


async def push_groups(
    plan: SyncPlan, idp: IdpRequests, driver: Driver, connect: Callable[[], Connection], *,
    concurrency: int, state: SyncState,
) -> None:
    async def one(connection: Connection, group: int) -> None:
        lookup = idp.group_lookup_path(plan, group)
        if lookup is not None:
            await driver.send(connection, "GET /Groups", "GET", lookup)
        created = await driver.send(connection, "POST /Groups", "POST", f"{SCIM_BASE}/Groups",
                                    body=idp.group_body(plan, group), expect=(201,))
        if created.status != 201:
            return
        group_id = str(created.json()["id"])
        state.group_ids[group] = group_id
        members = [(state.user_ids[m], plan.user_name(m)) for m in plan.members_of(group)
                   if m in state.user_ids]
        for start in range(0, len(members), idp.member_batch):
            await driver.send(connection, "PATCH /Groups members", "PATCH",
                              f"{SCIM_BASE}/Groups/{group_id}",
                              body=idp.add_members_body(
                                  members[start:start + idp.member_batch]))
        state.progress("groups", len(state.group_ids), plan.groups)

    await run_closed_loop(connect, max(1, concurrency), range(plan.groups), one)
