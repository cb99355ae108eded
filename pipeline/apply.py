"""Applying journal entries to one resource: pure, in `seq` order, with effects as data.

`apply_resource` takes the applied state of one resource and its pending entries and returns
what to write: the final state, the membership changes (as a set-based plan, never a loaded
member list unless a filter demands it), the effects (events, session revocation) and which
entries were applied or are blocked on a member that has not landed yet. It does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.scim.filters import Compare, Or
from scimflow.pipeline.scim.patch import decode_operations
from scimflow.pipeline.scim.patch_paths import parse_path
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.store.journal import Entry

MEMBERS = "members"


@dataclass(slots=True)
class MemberPlan:
    """Membership changes of one group, composed in order (later changes win)."""

    reset: bool = False
    adds: dict[str, dict[str, Any]] = field(default_factory=dict)
    removes: set[str] = field(default_factory=set)

    def add(self, values: Sequence[dict[str, Any]]) -> None:
        for value in values:
            self.adds.setdefault(value["value"], value)
            self.removes.discard(value["value"])

    def remove(self, member_ids: Collection[str]) -> None:
        for member_id in member_ids:
            self.adds.pop(member_id, None)
            if not self.reset:
                self.removes.add(member_id)

    def replace(self, values: Sequence[dict[str, Any]]) -> None:
        self.reset, self.removes = True, set()
        self.adds = {}
        self.add(values)

    @property
    def changed(self) -> bool:
        return self.reset or bool(self.adds) or bool(self.removes)


@dataclass(slots=True)
class Blocked:
    entry: Entry
    reason: str
    permanent: bool = False
    # Members that have not landed yet: the entry is woken as soon as one of them does.
    waiting_for: frozenset[str] = frozenset()


@dataclass(slots=True)
class Outcome:
    """What applying a resource's pending entries produced."""

    resource_type: str
    existed: bool
    state: dict[str, Any] | None
    applied: list[int] = field(default_factory=list)
    blocked: Blocked | None = None
    members: MemberPlan | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deprovisioned: bool = False
    previous_version: int = 0
    # Applied entries whose command was prepared (sealed passwords hashed): what the journal
    # keeps of them from now on.
    prepared: dict[int, Command] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.state is not None

    @property
    def changed(self) -> bool:
        return bool(self.applied)


MemberLoader = Callable[[], list[dict[str, Any]]]
# Turns a journaled command into the one to apply (None: as journaled), e.g. its sealed
# passwords into hashes (`pipeline/passwords/sealing.py`).
CommandPreparer = Callable[[Command], Command | None]


def apply_resource(
    protocol: ScimProtocol,
    resource_type: str,
    current: dict[str, Any] | None,
    entries: Sequence[Entry],
    *,
    known_ids: Collection[str],
    load_members: MemberLoader,
    prepare: CommandPreparer | None = None,
) -> Outcome:
    """Apply entries in order until one is blocked; report what changed.

    `known_ids` are the users and groups a membership may reference right now (applied, or
    created earlier in this batch). A membership naming anything else blocks its entry, and
    the entries after it wait: order per resource is never given up.
    """
    outcome = Outcome(resource_type, current is not None, current)
    group_type = protocol.resource_type("Group")
    is_group = resource_type == "Group"
    full_members = is_group and _needs_member_list(entries, group_type)
    members = (load_members() if current is not None else []) if full_members else None
    if is_group:
        outcome.members = MemberPlan()
    for entry in entries:
        try:
            members = _apply_entry(
                protocol,
                outcome,
                entry,
                members=members,
                known_ids=known_ids,
                group_type=group_type,
                prepare=prepare,
            )
        except ScimError as ex:
            # The API validated this command against the same state, so a failure here is a
            # command that cannot apply any more (e.g. its resource was deleted and recreated).
            outcome.blocked = Blocked(entry, f"{type(ex).__name__}: {ex.detail}", permanent=True)
        if outcome.blocked is not None:
            break
        outcome.applied.append(entry.seq)
    if full_members and members is not None and outcome.members is not None:
        outcome.members.replace(members)
    return outcome


def _apply_entry(
    protocol: ScimProtocol,
    outcome: Outcome,
    entry: Entry,
    *,
    members: list[dict[str, Any]] | None,
    known_ids: Collection[str],
    group_type: ResourceType,
    prepare: CommandPreparer | None = None,
) -> list[dict[str, Any]] | None:
    command = entry.command
    unknown = referenced_member_ids(command) - set(known_ids)
    if unknown:
        outcome.blocked = Blocked(
            entry, f"waiting for members: {', '.join(sorted(unknown)[:5])}",
            waiting_for=frozenset(unknown),
        )
        return members
    before = outcome.state
    if members is not None and before is not None:
        before = {**before, MEMBERS: members}
    prepared = prepare(command) if prepare is not None else None
    if prepared is not None:
        command = prepared
    after, _ = protocol.apply(command, before)
    if prepared is not None:
        outcome.prepared[entry.seq] = prepared
    if members is not None:
        members = list(after.get(MEMBERS, [])) if after is not None else []
    elif outcome.members is not None:
        _plan_members(outcome.members, command, group_type)
    outcome.state = None if after is None else {k: v for k, v in after.items() if k != MEMBERS}
    _record_effects(outcome, command, before, after)
    return members


def _plan_members(plan: MemberPlan, command: Command, group_type: ResourceType) -> None:
    if command.kind in (CommandKind.CREATE, CommandKind.REPLACE):
        plan.replace((command.resource or {}).get(MEMBERS, []))
        return
    if command.kind is CommandKind.DELETE:
        plan.replace([])
        return
    for op in command.operations:
        path = op["path"]
        if path == MEMBERS:
            if op["op"] == "add":
                plan.add(op["value"])
            elif op["op"] == "replace":
                plan.replace(op["value"])
            else:
                plan.replace([])
        elif path.startswith(MEMBERS + "["):
            plan.remove(_member_ids_of_filter(op, group_type))


def _member_ids_of_filter(op: dict[str, Any], group_type: ResourceType) -> list[str]:
    ids = _value_eq_ids(_filter_of(op, group_type))
    assert ids is not None  # guaranteed by _needs_member_list
    return ids


def _value_eq_ids(value_filter: Any) -> list[str] | None:
    """`value eq "a"` or `value eq "a" or value eq "b"`: the ids, else None."""
    if isinstance(value_filter, Compare):
        if (
            value_filter.op == "eq"
            and value_filter.path.name.lower() == "value"
            and isinstance(value_filter.value, str)
        ):
            return [value_filter.value]
        return None
    if isinstance(value_filter, Or):
        left, right = _value_eq_ids(value_filter.left), _value_eq_ids(value_filter.right)
        return None if left is None or right is None else left + right
    return None


def _needs_member_list(entries: Sequence[Entry], group_type: ResourceType) -> bool:
    """Whether some member operation can only be applied to the loaded member list.

    Whole-list add/replace/remove and `remove` by `value eq` ids are set operations; any other
    filter or sub-attribute on `members` needs the members themselves.
    """
    for entry in entries:
        for op in entry.command.operations:
            path = op["path"]
            if not path.startswith(MEMBERS) or path == MEMBERS:
                continue
            if op["op"] != "remove" or not path.startswith(MEMBERS + "[") or not path.endswith("]"):
                return True
            if _value_eq_ids(_filter_of(op, group_type)) is None:
                return True
    return False


def _filter_of(op: dict[str, Any], group_type: ResourceType) -> Any:
    return decode_operations([op], group_type)[0].target.value_filter


def referenced_member_ids(command: Command) -> set[str]:
    """The ids of the members a command adds or sets (the workers must know them first).

    Besides `members` values, an `add` to `members[value eq "id"].display` creates member `id`.
    """
    referenced: list[Any] = list((command.resource or {}).get(MEMBERS, []))
    for op in command.operations:
        if not op["path"].startswith(MEMBERS) or op["op"] == "remove":
            continue
        value = op.get("value")
        referenced.extend(value if isinstance(value, list) else [])
        if op["path"].startswith(MEMBERS + "["):
            ids = _value_eq_ids(parse_path(op["path"]).value_filter) or []
            referenced.extend({"value": member_id} for member_id in ids)
    return {
        member["value"] for member in referenced
        if isinstance(member, dict) and isinstance(member.get("value"), str)
    }


def _names_every_member(command: Command) -> bool:
    """Whether every member value the command adds or sets names its member (`value`)."""
    values: list[Any] = list((command.resource or {}).get(MEMBERS, []))
    for op in command.operations:
        if op["path"].startswith(MEMBERS) and op["op"] != "remove":
            value = op.get("value")
            values.extend(value if isinstance(value, list) else [])
    return all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in values)


def _record_effects(
    outcome: Outcome,
    command: Command,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    kind = outcome.resource_type.lower()
    if after is None:
        outcome.events.append((f"{kind}.deleted", {}))
    elif before is None:
        outcome.events.append((f"{kind}.created", {}))
    else:
        outcome.events.append((f"{kind}.updated", {"command": command.kind.value}))
    if outcome.resource_type == "User" and _takes_access_away(before, after):
        outcome.deprovisioned = True
        outcome.events.append(("user.deprovisioned", {"deleted": after is None}))


def _takes_access_away(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    if before is None:
        return False
    was_active = before.get("active", True) is not False
    return was_active and (after is None or after.get("active", True) is False)


def project_members(
    protocol: ScimProtocol,
    group: dict[str, Any],
    applied_members: list[dict[str, Any]],
    pending: Sequence[Command],
) -> list[dict[str, Any]]:
    """The members a group will have once its pending commands apply (read-your-writes).

    Only `members` is taken from the result; `group` supplies the other attributes so the
    commands apply as they will in the worker. A command that cannot apply here is one the
    worker will dead-letter, so it is skipped, as it will be skipped there.
    """
    members = applied_members
    for command in pending:
        if command.kind is CommandKind.DELETE:
            return []
        if not _names_every_member(command):
            continue  # the worker cannot apply it either (it is refused when accepted)
        try:
            after, _ = protocol.apply(command, {**group, MEMBERS: members})
        except ScimError:
            continue
        members = list((after or {}).get(MEMBERS, []))
    return members
