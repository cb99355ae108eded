"""How SCIM values compare and order by type (RFC 7644 §3.4.2.2 filters, §3.4.2.3 sorting): the one
rule set of the in-memory evaluator and of the sort keys and SQL operands of
`pipeline.store.search`, so memory and SQL agree.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from scimflow.pipeline.scim.schema import Attribute, AttrType
from scimflow.pipeline.scim.unicode import fold_key

ORDERING_OPS: Final = frozenset(("gt", "ge", "lt", "le"))
SUBSTRING_OPS: Final = frozenset(("co", "sw", "ew"))
STRING_TYPES: Final = frozenset(
    (AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY, AttrType.DATETIME)
)
NUMBER_TYPES: Final = frozenset((AttrType.INTEGER, AttrType.DECIMAL))
# RFC 7644 §3.4.2.2: gt/ge/lt/le on these are refused.
UNORDERED_TYPES: Final = frozenset((AttrType.BOOLEAN, AttrType.BINARY))

_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "co": lambda stored, wanted: wanted in stored,
    "sw": lambda stored, wanted: stored.startswith(wanted),
    "ew": lambda stored, wanted: stored.endswith(wanted),
}


# xsd:dateTime's lexical form: fromisoformat alone also accepts a bare date, a space separator
# and ISO 8601 basic format ("20080123T045622Z"), none of which xsd:dateTime allows.
_XSD_DATETIME: Final = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?"
)


def is_xsd_datetime(value: Any) -> bool:
    """Whether a value is written as an xsd:dateTime (RFC 7643 §2.3.5)."""
    return type(value) is str and _XSD_DATETIME.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def parse_datetime(text: str) -> datetime | None:
    """A dateTime as a UTC instant, or None if it is none. Lenient (a bare date is midnight
    UTC), as filter operands may be; values written to a resource must also be
    `is_xsd_datetime`.

    A missing offset means UTC. Converted to UTC because SQLite stores timestamps as UTC
    wall-clock text; an instant compares the same in any zone, so one that has no UTC
    wall-clock time (before year 1 or after 9999 there) keeps its own offset.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        return aware


def comparable(attr: Attribute, value: Any) -> Any:
    """`value` as the attribute's type orders and equates it; None if it has no such value.

    The sort key of RFC 7644 §3.4.2.3 and both sides of a filter's eq/ne/gt/ge/lt/le.
    """
    if attr.type is AttrType.DATETIME:
        return parse_datetime(value) if isinstance(value, str) else None
    if attr.type is AttrType.BOOLEAN:
        return value if isinstance(value, bool) else None
    if attr.type in NUMBER_TYPES:
        return value if is_number(value) else None
    if attr.type in STRING_TYPES and isinstance(value, str):
        return text_key(attr, value)
    return None


def text_key(attr: Attribute, text: str) -> str:
    """The form in which a string attribute's text is compared: folded unless caseExact."""
    return text if attr.case_exact else fold_key(text)


def compare(attr: Attribute, op: str, stored: Any, wanted: Any) -> bool:
    """Whether one stored value of `attr` satisfies `stored <op> wanted` (RFC 7644 §3.4.2.2)."""
    if op in SUBSTRING_OPS:
        both_text = isinstance(stored, str) and isinstance(wanted, str)
        return (
            attr.type in STRING_TYPES
            and both_text
            and _OPERATORS[op](text_key(attr, stored), text_key(attr, wanted))
        )
    if op in ORDERING_OPS and attr.type in UNORDERED_TYPES:
        return False
    stored_key, wanted_key = comparable(attr, stored), comparable(attr, wanted)
    if stored_key is None or wanted_key is None:
        return False
    return _OPERATORS[op](stored_key, wanted_key)


def is_number(value: Any) -> bool:
    """A JSON number: an int or float, but not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)
