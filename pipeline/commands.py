"""Canonical commands: what an accepted SCIM write becomes, and what the journal stores.

A command is plain data with a JSON codec. It holds only canonical, validated content (never a
cleartext password), so replaying it later needs no request and no client. Its operations on a
group's `members` are decoded once (`member_operations`), and `member_values` / `member_refs` are
the one rule for which members a command adds or sets: the API checks those values, the
workers wait for those ids and the drain looks them up.
An `Entry` is a command as the journal holds it: its global `seq`, attempts and due time.
See docs/ARCHITECTURE.md ("The path of a write").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from scimflow.pipeline.scim.filters import Compare, Filter, Or
from scimflow.pipeline.scim.patch_paths import parse_path

MEMBERS = "members"


class CommandKind(StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    PATCH = "patch"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class MemberOperation:
    """One canonical PATCH operation on a group's `members`, decoded.

    `ids` are the members a `members[value eq "a" or value eq "b"]` path names (None for any
    other filter, or none); `sub` is the sub-attribute after the filter (`.display`).
    """

    op: str
    values: tuple[Any, ...]
    filtered: bool
    ids: tuple[str, ...] | None
    sub: str | None

    @property
    def whole_list(self) -> bool:
        """`members` itself: add to, replace or clear the list."""
        return not self.filtered and self.sub is None

    @property
    def set_based(self) -> bool:
        """Whether it applies without the member list: to the whole list, or removing ids."""
        removes_ids = self.op == "remove" and self.ids is not None and self.sub is None
        return self.whole_list or removes_ids

    def referenced(self) -> list[Any]:
        """The member values it adds or sets: those it carries, and the ids its filter names
        when it adds below them (`add` to `members[value eq "id"].display` creates `id`)."""
        if self.op == "remove":
            return []
        named = [{"value": member_id} for member_id in self.ids or ()]
        return [*self.values, *named]


@dataclass(frozen=True)
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

    @cached_property
    def member_operations(self) -> tuple[MemberOperation, ...]:
        """Its PATCH operations on `members`, in order, each decoded once."""
        return tuple(
            decoded for op in self.operations if (decoded := _member_operation(op)) is not None
        )

    @property
    def touches_members(self) -> bool:
        return bool(self.member_operations) or MEMBERS in (self.resource or {})

    def member_values(self) -> list[Any]:
        """Every member value the command adds or sets, as sent (possibly malformed)."""
        values: list[Any] = list((self.resource or {}).get(MEMBERS, []))
        for operation in self.member_operations:
            values.extend(operation.referenced())
        return values

    def member_refs(self) -> frozenset[str]:
        """The ids of the members the command adds or sets: they must exist before it applies."""
        return frozenset(
            value["value"] for value in self.member_values()
            if isinstance(value, dict) and isinstance(value.get("value"), str)
        )

    def names_every_member(self) -> bool:
        """Whether every member value it adds or sets names its member (`value`)."""
        return all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in self.member_values()
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


def _member_operation(op: dict[str, Any]) -> MemberOperation | None:
    if not op["path"].startswith(MEMBERS):  # canonical paths: no need to parse the others
        return None
    path = parse_path(op["path"])
    if path.attr.name != MEMBERS or path.attr.urn is not None:
        return None
    value = op.get("value")
    values = tuple(value) if isinstance(value, list) else ()
    filtered = path.value_filter is not None
    ids = value_eq_ids(path.value_filter) if filtered else None
    return MemberOperation(op["op"], values, filtered, ids, path.sub or path.attr.sub)


def value_eq_ids(value_filter: Filter | None) -> tuple[str, ...] | None:
    """`value eq "a"` or `value eq "a" or value eq "b"`: the ids; any other filter: None."""
    if isinstance(value_filter, Compare):
        member_id = value_filter.value
        if value_filter.op == "eq" and value_filter.path.name.lower() == "value" and isinstance(
            member_id, str
        ):
            return (member_id,)
        return None
    if isinstance(value_filter, Or):
        left, right = value_eq_ids(value_filter.left), value_eq_ids(value_filter.right)
        return None if left is None or right is None else left + right
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    """A command as the journal holds it, pending until the workers apply it."""

    seq: int
    tenant_id: str
    resource_id: str
    command: Command
    attempts: int
    created_at: datetime
    not_before: datetime | None = None
    # The API request that journaled it: named in logs and dead letters, for support.
    request_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """The resource it writes: (tenant, id)."""
        return self.tenant_id, self.resource_id

    def due(self, now: datetime) -> bool:
        return self.not_before is None or self.not_before <= now

