"""What differs between IdPs in a sync: request shapes. The sequence is in `sync.py`."""

from __future__ import annotations

from typing import Any, Protocol

from scimflow.ops.bench.plan import SyncPlan

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_BASE = "/scim/v2"


class IdpRequests(Protocol):
    """One IdP's request shapes (bodies and paths) for the benchmark's sync."""

    @property
    def name(self) -> str: ...

    @property
    def member_batch(self) -> int:
        """Members added per group PATCH."""
        ...

    @property
    def sends_manager(self) -> bool:
        """Whether a create names the user's manager (so it waits until the manager exists)."""
        ...

    @property
    def user_agent(self) -> str:
        """The User-Agent its requests carry (empty: none documented, none sent)."""
        ...

    @property
    def passwords(self) -> bool:
        """Whether a create carries a `password` (Okta's "Sync password")."""
        ...

    def user_body(self, plan: SyncPlan, index: int, manager_id: str | None) -> dict[str, Any]:
        ...

    def existence_path(self, user_name: str) -> str:
        ...

    def deactivation_body(self, plan: SyncPlan, index: int) -> dict[str, Any]:
        ...

    def group_lookup_path(self, plan: SyncPlan, group: int) -> str | None:
        """The existence check an IdP sends before creating a group (None: it sends none)."""
        ...

    def group_body(self, plan: SyncPlan, group: int) -> dict[str, Any]:
        ...

    def add_members_body(self, members: list[tuple[str, str]]) -> dict[str, Any]:
        """A PATCH adding members, given as (id, userName)."""
        ...


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def group_name(plan: SyncPlan, group: int) -> str:
    return f"group{group:04d}.{plan.run_id}"
