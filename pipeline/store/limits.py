"""What the store can keep: checked when a write is accepted, never discovered by a worker.

The directory's string columns (`users.user_name`, `groups.display_name`, `memberships.display`
and the unique keys of `resources`) hold up to 512 characters. SCIM sets no maximum, so a
longer value is refused with `400 invalidValue` when the write is accepted: refused later, at
apply time, it would be an acknowledged change the workers can never apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from pipeline.errors import InvalidValue

MAX_TEXT: Final = 512
_STORED_TEXT: Final = {
    "User": ("userName", "externalId", "displayName"),
    "Group": ("displayName", "externalId"),
}


def check_storable(
    resource_type: str,
    data: Mapping[str, Any],
    members: Iterable[Mapping[str, Any]] | None = None,
) -> None:
    """Raise InvalidValue if an attribute the directory keeps in a column is too long."""
    for name in _STORED_TEXT.get(resource_type, ()):
        _check(name, data.get(name))
    for member in members or ():
        _check("members.display", member.get("display"))


def _check(name: str, value: object) -> None:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise InvalidValue(f"{name} is longer than {MAX_TEXT} characters.")
