"""Microsoft Entra ID's request shapes, default mode (E1, E2, E7 in tests/samples/INDEX.md;
the bodies in tests/samples/idp/entra/; the same shapes as tests/system/idp.py).

Matching is `GET /Users?filter=userName eq "…"` with spaces sent as `+`; the create carries
the enterprise extension with `manager` as a bare id string (E7), the manager being a user
created earlier; updates are capitalised multi-op PATCHes, a deactivation sending `active` as
the string `"False"` (E2); a group is looked up by displayName with
`excludedAttributes=members`, created without members, then filled by `Add` PATCHes of
`members` lists with `"$ref": null` (E1), ten per request (the notes' default batch).
"""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from scimflow.ops.bench.idp_requests import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    SCIM_BASE,
    USER_SCHEMA,
    group_name,
    patch_body,
)
from scimflow.ops.bench.plan import SyncPlan

_DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "Research")


@dataclass(frozen=True)
class Entra:
    name: str = "entra"
    member_batch: int = 10
    sends_manager: bool = True
    passwords: bool = False  # Entra provisions no passwords
    # Its provisioning service's User-Agent is not in the notes: none is sent.
    user_agent: str = ""

    def user_body(self, plan: SyncPlan, index: int, manager_id: str | None) -> dict[str, Any]:
        user_name = plan.user_name(index)
        given, family = f"Given{index}", f"Family{index}"
        enterprise: dict[str, Any] = {"department": _DEPARTMENTS[index % len(_DEPARTMENTS)],
                                      "employeeNumber": f"E{index:07d}"}
        if manager_id is not None:
            enterprise["manager"] = manager_id
        return {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": user_name.split("@", 1)[0],  # mailNickname, Entra's default mapping
            "userName": user_name, "active": True, "displayName": f"{given} {family}",
            "emails": [{"primary": True, "type": "work", "value": user_name}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
            "roles": [],
            ENTERPRISE_SCHEMA: enterprise,
        }

    def existence_path(self, user_name: str) -> str:
        query = urllib.parse.quote_plus(f'userName eq "{user_name}"')
        return f"{SCIM_BASE}/Users?filter={query}"

    def deactivation_body(self, plan: SyncPlan, index: int) -> dict[str, Any]:
        """Out of scope: the attributes that changed, one `Replace` each, and the disable."""
        return patch_body(
            {"op": "Replace", "path": "displayName", "value": f"Given{index} Family{index} (left)"},
            {"op": "Replace", "path": "active", "value": "False"},
        )

    def group_lookup_path(self, plan: SyncPlan, group: int) -> str | None:
        query = urllib.parse.quote_plus(f'displayName eq "{group_name(plan, group)}"')
        return f"{SCIM_BASE}/Groups?excludedAttributes=members&filter={query}"

    def group_body(self, plan: SyncPlan, group: int) -> dict[str, Any]:
        object_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{plan.run_id}/group/{group}")
        return {"schemas": [GROUP_SCHEMA], "externalId": str(object_id),
                "displayName": group_name(plan, group), "meta": {"resourceType": "Group"}}

    def add_members_body(self, members: list[tuple[str, str]]) -> dict[str, Any]:
        values = [{"$ref": None, "value": user_id} for user_id, _ in members]
        return patch_body({"op": "Add", "path": "members", "value": values})
