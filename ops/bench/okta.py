"""Okta's request shapes (O1 in tests/samples/INDEX.md; the bodies in tests/samples/idp/okta/):
the `userName eq` existence check with `startIndex=1&count=100`, the create body, with a
`password` when the app has "Sync password" on, deactivation as a path-less `replace` of
`{"active": false}`, groups pushed with `members: []` then `add` PATCHes of members."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from scimflow.ops.bench.idp_requests import (
    GROUP_SCHEMA,
    SCIM_BASE,
    USER_SCHEMA,
    group_name,
    patch_body,
)
from scimflow.ops.bench.plan import SyncPlan


@dataclass(frozen=True)
class Okta:
    passwords: bool = True
    name: str = "okta"
    # O5's wire headers; the console shows the tenant's IdP from it.
    user_agent: str = "Okta SCIM Client 1.0.0"
    member_batch: int = 100
    sends_manager: bool = False

    def user_body(self, plan: SyncPlan, index: int, manager_id: str | None) -> dict[str, Any]:
        name = plan.user_name(index)
        body: dict[str, Any] = {
            "schemas": [USER_SCHEMA], "userName": name,
            "name": {"givenName": f"Given{index}", "familyName": f"Family{index}"},
            "emails": [{"primary": True, "value": name, "type": "work"}],
            "displayName": f"Given{index} Family{index}", "locale": "en-US",
            "externalId": f"00u{plan.run_id}{index:07d}", "groups": [], "active": True,
        }
        if self.passwords:
            body["password"] = f"Pw{index:07d}!{plan.run_id}"
        return body

    def existence_path(self, user_name: str) -> str:
        query = urllib.parse.quote(f'userName eq "{user_name}"', safe="")
        return f"{SCIM_BASE}/Users?filter={query}&startIndex=1&count=100"

    def deactivation_body(self, plan: SyncPlan, index: int) -> dict[str, Any]:
        return patch_body({"op": "replace", "value": {"active": False}})

    def group_lookup_path(self, plan: SyncPlan, group: int) -> str | None:
        return None  # group push creates the group it owns

    def group_body(self, plan: SyncPlan, group: int) -> dict[str, Any]:
        return {"schemas": [GROUP_SCHEMA], "displayName": group_name(plan, group), "members": []}

    def add_members_body(self, members: list[tuple[str, str]]) -> dict[str, Any]:
        values = [{"value": user_id, "display": user_name} for user_id, user_name in members]
        return patch_body({"op": "add", "path": "members", "value": values})
