"""`ScimProtocol`: the one entry point the API and the workers share. The API's `validate_*` return
a canonical `Command` or raise a `ScimError`; the workers' `apply` is pure and deterministic (the
same command on the same state gives the same result), so a redelivered command changes nothing.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)", "The path of a write").
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.ports import PasswordProtector
from scimflow.pipeline.scim.patch import decode_operations, normalise_patch, operations_json
from scimflow.pipeline.scim.patch_apply import apply_operations
from scimflow.pipeline.scim.registry import SchemaRegistry, default_registry
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.scim.validation import ResourceValidator, keep_write_only

Resource = dict[str, Any]


class ScimProtocol:
    """Validates SCIM writes into commands and applies commands to resources."""

    def __init__(
        self, registry: SchemaRegistry, *, protect_password: PasswordProtector | None = None
    ) -> None:
        self.registry = registry
        self._protect_password = protect_password
        self._validators = {
            rt.name: ResourceValidator(rt, protect_password) for rt in registry.resource_types
        }

    def resource_type(self, name: str) -> ResourceType:
        return self.registry.resource_type(name)

    def validate_create(self, type_name: str, resource_id: str, payload: Any) -> Command:
        """POST (RFC 7644 §3.3)."""
        resource = self._validator(type_name).create(payload)
        return Command(CommandKind.CREATE, type_name, resource_id, resource=resource)

    def validate_replace(
        self, type_name: str, resource_id: str, payload: Any, current: Mapping[str, Any]
    ) -> Command:
        """PUT (RFC 7644 §3.5.1) against the current state."""
        resource = self._validator(type_name).replace(payload, current)
        return Command(CommandKind.REPLACE, type_name, resource_id, resource=resource)

    def validate_patch(
        self, type_name: str, resource_id: str, payload: Any, current: Mapping[str, Any]
    ) -> tuple[Command, Resource, bool]:
        """PATCH (RFC 7644 §3.5.2): the command, the state it leads to, and whether it changes."""
        resource_type = self.resource_type(type_name)
        operations = normalise_patch(payload, resource_type, self._protect_password)
        new, changed = apply_operations(current, operations, resource_type)
        command = Command(
            CommandKind.PATCH, type_name, resource_id, operations=tuple(operations_json(operations))
        )
        return command, new, changed

    def delete(self, type_name: str, resource_id: str) -> Command:
        """DELETE (RFC 7644 §3.6)."""
        self.resource_type(type_name)
        return Command(CommandKind.DELETE, type_name, resource_id)

    def apply(
        self, command: Command, current: Mapping[str, Any] | None
    ) -> tuple[Resource | None, bool]:
        """Apply a command to the current state (None: no resource); report whether it changed."""
        if command.kind is CommandKind.DELETE:
            return None, current is not None
        if command.kind is not CommandKind.PATCH:
            new = dict(command.resource or {})
            if command.kind is CommandKind.REPLACE and current is not None:
                new = keep_write_only(self.resource_type(command.resource_type), new, current)
            return new, new != current
        if current is None:
            return None, False  # the resource was deleted before this PATCH reached it
        resource_type = self.resource_type(command.resource_type)
        operations = decode_operations(list(command.operations), resource_type)
        return apply_operations(current, operations, resource_type)

    def _validator(self, type_name: str) -> ResourceValidator:
        validator = self._validators.get(type_name)
        if validator is None:
            self.resource_type(type_name)  # raises NotFound with the registry's message
            raise AssertionError(type_name)
        return validator


@cache
def default_protocol() -> ScimProtocol:
    """An protocol over the built-in schemas that drops passwords (for tools and benchmarks)."""
    return ScimProtocol(default_registry())
