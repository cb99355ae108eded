"""A journaled command in words, for an operator reading a resource's history (pure).

"created", "replaced", "set active=false", "added 3 members, removed 1", "deleted".
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import json
from typing import Any

from scimflow.pipeline.commands import Command, CommandKind, MemberOperation

SHOWN_VALUE_LENGTH = 40


def summarise(command: Command) -> str:
    if command.kind is CommandKind.CREATE:
        return "created" + _active_note(command.resource)
    if command.kind is CommandKind.REPLACE:
        return "replaced" + _active_note(command.resource)
    if command.kind is CommandKind.DELETE:
        return "deleted"
    return _patch_words(command) or "patched (no operation)"


def _active_note(resource: dict[str, Any] | None) -> str:
    # Deprovisioning by PUT (Okta's AIW apps) reads as what it is.
    return " with active=false" if (resource or {}).get("active") is False else ""


def _patch_words(command: Command) -> str:
    added = removed = 0
    phrases: list[str] = []
    for operation in command.member_operations:
        count, phrase = _member_words(operation)
        if operation.op == "add" and phrase is None:
            added += count
        elif operation.op == "remove" and phrase is None:
            removed += count
        elif phrase is not None:
            phrases.append(phrase)
    members = []
    if added:
        members.append(f"added {added} member{'s' if added != 1 else ''}")
    if removed:
        members.append(f"removed {removed}")
    others = [_attribute_words(op) for op in command.operations if not _on_members(op)]
    return ", ".join([*members, *phrases, *(w for words in others for w in words)])


def _member_words(operation: MemberOperation) -> tuple[int, str | None]:
    """(members counted, None) for a plain add or remove; (0, phrase) for anything else."""
    if operation.op == "add" and operation.whole_list:
        return len(operation.values), None
    if operation.op == "remove" and operation.ids is not None and operation.sub is None:
        return len(operation.ids), None
    if operation.op == "remove" and operation.whole_list:
        return 0, "removed all members"
    if operation.op == "replace" and operation.whole_list:
        return 0, f"set members to {len(operation.values)}"
    return 0, f"{operation.op} on members"


def _on_members(operation: dict[str, Any]) -> bool:
    return str(operation.get("path", "")).startswith("members")


def _attribute_words(operation: dict[str, Any]) -> list[str]:
    op, path, value = operation.get("op"), operation.get("path"), operation.get("value")
    if op == "remove":
        return [f"removed {path}"]
    if path:
        return [f"set {path}{_shown(value)}"]
    # No path: the value is an object of attributes (Okta's deactivation).
    if isinstance(value, dict):
        return [f"set {name}{_shown(item)}" for name, item in value.items()]
    return [f"{op}"]


def _shown(value: Any) -> str:
    if isinstance(value, bool | int | float) or value is None:
        return "=" + json.dumps(value)
    if isinstance(value, str) and len(value) <= SHOWN_VALUE_LENGTH:
        return "=" + json.dumps(value)
    return ""
