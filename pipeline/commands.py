"""Canonical commands: what an accepted SCIM write becomes, and what the journal stores.

A command is plain data with a JSON codec. It holds only canonical, validated content (never a
cleartext password), so replaying it later needs no request and no client.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CommandKind(StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    PATCH = "patch"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Command:
    """One validated write against one resource."""

    kind: CommandKind
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None = None  # CREATE / REPLACE: the full canonical resource
    operations: tuple[dict[str, Any], ...] = ()  # PATCH: canonical operations, in order

    @property
    def deprovisions(self) -> bool:
        """Whether the command takes access away (DELETE or `active` set to false)."""
        if self.kind is CommandKind.DELETE:
            return True
        if self.resource is not None:
            return self.resource.get("active") is False
        return any(
            op.get("path") == "active" and op.get("value") is False for op in self.operations
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "resourceType": self.resource_type,
            "id": self.resource_id,
        }
        if self.resource is not None:
            out["resource"] = self.resource
        if self.operations:
            out["operations"] = list(self.operations)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Command:
        return cls(
            kind=CommandKind(data["kind"]),
            resource_type=data["resourceType"],
            resource_id=data["id"],
            resource=data.get("resource"),
            operations=tuple(data.get("operations", ())),
        )
