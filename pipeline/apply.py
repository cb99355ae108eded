"""Applying journal entries to one resource: pure, in `seq` order, with effects as data.

`apply_resource` does no I/O: what it needs from the store comes in as values and callables, and
a membership change is a set-based plan, never a loaded member list unless an operation demands
it. See docs/ARCHITECTURE.md ("The path through the workers").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from scimflow.pipeline.commands import MEMBERS, Command, CommandKind, Entry
from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.events.model import (
    EventDraft,
    changed_attributes,
    entry_event_type,
    identity_of,
)
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.render import render_resource


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
    # What to tell the application: one draft per entry that changed something.
    events: list[EventDraft] = field(default_factory=list)
    deprovisioned: bool = False
    previous_version: int = 0
    # The request of the last entry applied: named by the events the batch's statements make.
    request_id: str = ""
    # Applied entries whose command was prepared (sealed passwords hashed): what the journal
    # keeps of them from now on.
    prepared: dict[int, Command] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.state is not None

    @property
    def version(self) -> int:
        """The resource's version once written: one more per applied entry."""
        return self.previous_version + len(self.applied)

    @property
    def changed(self) -> bool:
        return bool(self.applied)


MemberLoader = Callable[[], list[dict[str, Any]]]
# Turns a journaled command into the one to apply (None: as journaled), e.g. its sealed
# passwords into hashes (`pipeline/passwords/unsealing.py`).
CommandPreparer = Callable[[Command], Command | None]


def apply_resource(
    protocol: ScimProtocol,
    resource_type: str,
    current: dict[str, Any] | None,
    entries: Sequence[Entry],
    *,
    version: int,
    known_ids: Collection[str],
    load_members: MemberLoader,
    prepare: CommandPreparer | None = None,
) -> Outcome:
    """Apply entries in order until one is blocked; report what changed.

    `current` is the applied state (None: not applied yet) at `version`. `known_ids` are the
    users and groups a membership may reference right now (applied, or created earlier in
    this batch). A membership naming anything else blocks its entry, and the entries after it
    wait: order per resource is never given up.
    """
    outcome = Outcome(resource_type, current is not None, current, previous_version=version)
    is_group = resource_type == "Group"
    full_members = is_group and _needs_member_list(entries)
    members = (load_members() if current is not None else []) if full_members else None
    if is_group:
        outcome.members = MemberPlan()
    for entry in entries:
        try:
            members = _apply_entry(
                protocol, outcome, entry, members=members, known_ids=known_ids, prepare=prepare
            )
        except ScimError as ex:
            # The API validated this command against the same state, so a failure here is a
            # command that cannot apply any more (e.g. its resource was deleted and recreated).
            outcome.blocked = Blocked(entry, f"{type(ex).__name__}: {ex.detail}", permanent=True)
        if outcome.blocked is not None:
            break
        outcome.applied.append(entry.seq)
        outcome.request_id = entry.request_id
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
    prepare: CommandPreparer | None,
) -> list[dict[str, Any]] | None:
    command = entry.command
    unknown = command.member_refs() - set(known_ids)
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
    after, changed = protocol.apply(command, before)
    if prepared is not None:  # applied: the journal keeps the prepared command from now on
        outcome.prepared[entry.seq] = prepared
    if members is not None:
        members = list(after.get(MEMBERS, [])) if after is not None else []
    elif outcome.members is not None:
        _plan_members(outcome.members, command)
    state_before = outcome.state
    outcome.state = None if after is None else {k: v for k, v in after.items() if k != MEMBERS}
    if changed:
        _record_effects(protocol, outcome, entry, state_before, outcome.state)
    return members


def _plan_members(plan: MemberPlan, command: Command) -> None:
    if command.kind in (CommandKind.CREATE, CommandKind.REPLACE):
        plan.replace((command.resource or {}).get(MEMBERS, []))
        return
    if command.kind is CommandKind.DELETE:
        plan.replace([])
        return
    for operation in command.member_operations:
        if not operation.whole_list:
            plan.remove(operation.ids or ())  # set-based: guaranteed by _needs_member_list
        elif operation.op == "add":
            plan.add(operation.values)
        elif operation.op == "replace":
            plan.replace(operation.values)
        else:
            plan.replace([])


def _needs_member_list(entries: Sequence[Entry]) -> bool:
    """Whether some member operation can only be applied to the loaded member list.

    Whole-list add/replace/remove and `remove` by `value eq` ids are set operations; any other
    filter or sub-attribute on `members` needs the members themselves.
    """
    return any(
        not operation.set_based
        for entry in entries
        for operation in entry.command.member_operations
    )


def _record_effects(
    protocol: ScimProtocol,
    outcome: Outcome,
    entry: Entry,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """The entry's event, unless only `members` changed (those are reported per member, from
    what the membership statements really changed)."""
    resource_type = outcome.resource_type
    if resource_type == "User" and _takes_access_away(before, after):
        outcome.deprovisioned = True
    changed = changed_attributes(before, after)
    if before is not None and after is not None and not changed:
        return
    outcome.events.append(EventDraft(
        type=entry_event_type(resource_type, before, after),
        version=outcome.previous_version + len(outcome.applied) + 1,
        seq=entry.seq,
        data=None if after is None else render_resource(
            after, protocol.resource_type(resource_type), resource_id=entry.resource_id, meta=None
        ),
        identity=identity_of(resource_type, after if after is not None else before),
        changed_attributes=changed,
        request_id=entry.request_id or None,
    ))


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
        if not command.names_every_member():
            continue  # the worker cannot apply it either (it is refused when accepted)
        try:
            after, _ = protocol.apply(command, {**group, MEMBERS: members})
        except ScimError:
            continue
        members = list((after or {}).get(MEMBERS, []))
    return members
