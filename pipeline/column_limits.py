"""What the store can keep: checked when a write is accepted, never discovered by a worker.

The directory's string columns (`users.user_name`, `groups.display_name`, `memberships.display`
and the folded unique keys of `resources`, `users` and `groups`) hold up to 512 characters;
SCIM sets no maximum. See docs/ARCHITECTURE.md ("The path of a write").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from scimflow.pipeline.errors import InvalidValue
from scimflow.pipeline.scim.unicode import fold_key

MAX_TEXT: Final = 512
_FOLDED: Final = frozenset(("userName", "displayName"))
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
    if not isinstance(value, str):
        return
    # A folded key can be longer than its text ("ß" folds to "ss"); it is stored too.
    folded = fold_key(value) if name in _FOLDED else value
    if max(len(value), len(folded)) > MAX_TEXT:
        raise InvalidValue(f"{name} is longer than {MAX_TEXT} characters.")
