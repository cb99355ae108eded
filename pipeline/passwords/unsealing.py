"""The worker's half of password handling: the sealed passwords of a command (a created or
replaced user's `password`, a PATCH operation on `password`) become hashes before it applies.
See docs/ARCHITECTURE.md ("Passwords").
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scimflow.pipeline.commands import Command
from scimflow.pipeline.passwords.crypto import (
    PasswordSeal,
    UnreadableSeal,
    is_sealed,
)
from scimflow.pipeline.ports import PasswordProtector

PASSWORD = "password"


class SealedPasswords:
    """Opens and hashes the sealed passwords of commands."""

    def __init__(self, seal: PasswordSeal | None, hash_password: PasswordProtector) -> None:
        # No seal: this worker has no key, and a sealed password is unreadable to it.
        self._seal = seal
        self._hash = hash_password

    def hashed(self, command: Command) -> Command | None:
        """The command with its sealed passwords hashed; None if it holds none.

        Raises UnreadableSeal when no configured key opens one: the entry cannot be applied
        as acknowledged, and is dead-lettered (replayable once the key is configured).
        """
        if not holds_sealed_password(command):
            return None
        if command.resource is not None:
            resource = {**command.resource, PASSWORD: self._open(command.resource[PASSWORD])}
            return replace(command, resource=resource)
        operations = tuple(self._hashed_operation(op) for op in command.operations)
        return replace(command, operations=operations)

    def _hashed_operation(self, operation: dict[str, Any]) -> dict[str, Any]:
        if not _sets_sealed_password(operation):
            return operation
        return {**operation, "value": self._open(operation["value"])}

    def _open(self, sealed: str) -> str:
        if self._seal is None:
            raise UnreadableSeal("this worker has no password key (SCIMFLOW_PASSWORD_KEY)")
        return self._hash(self._seal.open(sealed))


def _sets_sealed_password(operation: dict[str, Any]) -> bool:
    return operation.get("path") == PASSWORD and is_sealed(operation.get("value"))


def holds_sealed_password(command: Command) -> bool:
    """Whether a command still carries a sealed password (it was never applied)."""
    if command.resource is not None and is_sealed(command.resource.get(PASSWORD)):
        return True
    return any(_sets_sealed_password(op) for op in command.operations)
