"""An Okta-style initial sync (idp-notes: existence GET then POST per user; groups pushed with
an empty member list, then membership PATCHes), with deactivations sent while it runs."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scimflow.ops.bench.http import Connection
from scimflow.ops.bench.load import Driver, run_closed_loop

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEMBERS_PER_PATCH = 100


@dataclass(frozen=True)
class SyncPlan:
    users: int
    groups: int
    members_per_group: int
    deactivations: int
    run_id: str

    def user_name(self, index: int) -> str:
        return f"user{index:06d}.{self.run_id}@bench.example.com"

    def user_body(self, index: int) -> dict[str, Any]:
        """Okta's create body (O1), without a password (single sign-on applications)."""
        name = self.user_name(index)
        return {
            "schemas": [USER_SCHEMA], "userName": name,
            "name": {"givenName": f"Given{index}", "familyName": f"Family{index}"},
            "emails": [{"primary": True, "value": name, "type": "work"}],
            "displayName": f"Given{index} Family{index}", "locale": "en-US",
            "externalId": f"00u{self.run_id}{index:07d}", "groups": [], "active": True,
        }

    def members_of(self, group: int) -> list[int]:
        return [(group * self.members_per_group + k) % self.users
                for k in range(self.members_per_group)]

    def deactivated(self) -> list[int]:
        step = max(1, self.users // max(1, self.deactivations))
        return list(range(step // 2, self.users, step))[: self.deactivations]


@dataclass
class SyncState:
    user_ids: dict[int, str] = field(default_factory=dict)
    group_ids: dict[int, str] = field(default_factory=dict)
    created_event: asyncio.Event = field(default_factory=asyncio.Event)
    progress: Callable[[str, int, int], None] = lambda phase, done, total: None


def filter_path(user_name: str) -> str:
    query = urllib.parse.quote(f'userName eq "{user_name}"')
    return f"/scim/v2/Users?filter={query}&startIndex=1&count=100"


async def push_users(
    plan: SyncPlan, driver: Driver, connect: Callable[[], Connection], concurrency: int,
    state: SyncState,
) -> None:
    async def one(connection: Connection, index: int) -> None:
        await driver.send(connection, "existence GET", "GET", filter_path(plan.user_name(index)))
        response = await driver.send(connection, "POST /Users", "POST", "/scim/v2/Users",
                                     body=plan.user_body(index), expect=(201,))
        if response.status == 201:
            state.user_ids[index] = response.json()["id"]
            state.created_event.set()
        state.progress("users", len(state.user_ids), plan.users)

    await run_closed_loop(connect, concurrency, range(plan.users), one)


async def deactivate_during_sync(
    plan: SyncPlan, driver: Driver, connection: Connection, state: SyncState,
    before_deactivating: Callable[[str], Any],
) -> None:
    """PATCH active=false (Okta's path-less replace) for a sample, as soon as each exists."""
    body = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace",
                                                        "value": {"active": False}}]}
    for index in plan.deactivated():
        while index not in state.user_ids:
            state.created_event.clear()
            await state.created_event.wait()
        user_id = state.user_ids[index]
        await asyncio.get_running_loop().run_in_executor(None, before_deactivating, user_id)
        await driver.send(connection, "deactivate PATCH", "PATCH", f"/scim/v2/Users/{user_id}",
                          body=body)
    await connection.close()


async def push_groups(
    plan: SyncPlan, driver: Driver, connect: Callable[[], Connection], concurrency: int,
    state: SyncState,
) -> None:
    async def one(connection: Connection, group: int) -> None:
        created = await driver.send(
            connection, "POST /Groups", "POST", "/scim/v2/Groups", expect=(201,),
            body={"schemas": [GROUP_SCHEMA], "displayName": f"group{group:04d}.{plan.run_id}",
                  "members": []},
        )
        group_id = created.json()["id"]
        state.group_ids[group] = group_id
        members = plan.members_of(group)
        for start in range(0, len(members), MEMBERS_PER_PATCH):
            chunk = members[start:start + MEMBERS_PER_PATCH]
            values = [{"value": state.user_ids[m], "display": plan.user_name(m)} for m in chunk]
            await driver.send(connection, "PATCH /Groups members", "PATCH",
                              f"/scim/v2/Groups/{group_id}",
                              body={"schemas": [PATCH_SCHEMA], "Operations": [
                                  {"op": "add", "path": "members", "value": values}]})
        state.progress("groups", len(state.group_ids), plan.groups)

    await run_closed_loop(connect, concurrency, range(plan.groups), one)
