"""What a benchmark run provisions: users, groups, members, deactivations, managers, names.

The plan is deterministic for a run id, so the bare Falcon baseline, the sync and the
existence phase all send the same userNames and bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every user from this index on has a manager: user i reports to user i // MANAGER_SPAN, who is
# always created earlier in the sync (Entra sends the manager's id, so it must exist).
MANAGER_SPAN = 10


@dataclass(frozen=True)
class SyncPlan:
    users: int
    groups: int
    members_per_group: int
    deactivations: int
    run_id: str

    def user_name(self, index: int) -> str:
        return f"user{index:06d}.{self.run_id}@bench.example.com"

    def missing_user_name(self, index: int) -> str:
        """A userName no IdP request of the run ever creates (existence checks that miss)."""
        return f"absent{index:06d}.{self.run_id}@bench.example.com"

    def manager_of(self, index: int) -> int | None:
        return index // MANAGER_SPAN if index >= MANAGER_SPAN else None

    def managed_users(self) -> int:
        return max(0, self.users - MANAGER_SPAN)

    def members_of(self, group: int) -> list[int]:
        return [(group * self.members_per_group + k) % self.users
                for k in range(self.members_per_group)]

    def deactivated(self) -> list[int]:
        step = max(1, self.users // max(1, self.deactivations))
        return list(range(step // 2, self.users, step))[: self.deactivations]
