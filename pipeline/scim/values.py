"""Typed attribute values (RFC 7643 §2.3): check and canonicalise one value against its schema.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").

One `coerce_value` call per attribute value sits on the hot path of every write, so the
per-type checks are small functions looked up in a table rather than a chain of `if`s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from scimflow.pipeline.errors import InvalidValue
from scimflow.pipeline.scim.comparison import is_xsd_datetime, parse_datetime
from scimflow.pipeline.scim.idp_quirks import lenient_boolean
from scimflow.pipeline.scim.schema import Attribute, AttrType
from scimflow.pipeline.scim.unicode import is_storable_text

_BASE64 = re.compile(r"[A-Za-z0-9+/=\s_-]*")
def _fail(attr: Attribute, value: Any, expected: str) -> InvalidValue:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidValue(f"Attribute '{attr.name}' must be {expected}, got {shown}.")


def _string(attr: Attribute, value: Any) -> Any:
    # A lone surrogate (a valid JSON escape but no UTF-8 string, RFC 7643 §2.3.1) or a NUL
    # (refused by PostgreSQL): accepting one would acknowledge a write the store cannot keep.
    if type(value) is not str or not is_storable_text(value):
        raise _fail(attr, value, "a string of Unicode characters other than NUL")
    return value


def _boolean(attr: Attribute, value: Any) -> Any:
    if value is True or value is False:
        return value
    coerced = lenient_boolean(value)
    if coerced is None:
        raise _fail(attr, value, "a boolean")
    return coerced


def _integer(attr: Attribute, value: Any) -> Any:
    if type(value) is not int:
        raise _fail(attr, value, "an integer")
    return value


def _decimal(attr: Attribute, value: Any) -> Any:
    # json.loads reads NaN and Infinity, which are no JSON numbers (RFC 8259 §6): stored, they
    # would make the journal's JSON unreadable to any other JSON parser.
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _fail(attr, value, "a decimal number")
    return value


def _datetime(attr: Attribute, value: Any) -> Any:
    # xsd:dateTime (RFC 7643 §2.3.5): its lexical form, and a real instant.
    if not is_xsd_datetime(value) or parse_datetime(value) is None:
        raise _fail(attr, value, "an xsd:dateTime string")
    return value


def _binary(attr: Attribute, value: Any) -> Any:
    if type(value) is not str or not _BASE64.fullmatch(value):
        raise _fail(attr, value, "base64-encoded binary")
    return value


_SIMPLE: dict[AttrType, Callable[[Attribute, Any], Any]] = {
    AttrType.STRING: _string,
    AttrType.REFERENCE: _string,
    AttrType.BOOLEAN: _boolean,
    AttrType.INTEGER: _integer,
    AttrType.DECIMAL: _decimal,
    AttrType.DATETIME: _datetime,
    AttrType.BINARY: _binary,
}


def is_unassigned(value: Any) -> bool:
    """Null, an empty array and an absent attribute are the same state (RFC 7643 §2.5)."""
    return value is None or value in ([], {})


def coerce_simple(attr: Attribute, value: Any) -> Any:
    """Check one singular, non-complex value of `attr` and return its canonical form."""
    return _SIMPLE[attr.type](attr, value)


def coerce_complex(attr: Attribute, value: Any) -> dict[str, Any]:
    """Check one complex value: known sub-attributes only, canonical names, nulls dropped.

    Read-only sub-attributes (e.g. `manager.displayName`) are computed by the service provider,
    so values sent for them are ignored, as for top-level read-only attributes (RFC 7643 §2.2).
    """
    if type(value) is not dict:
        raise _fail(attr, value, "a complex value (JSON object)")
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key)
        if sub is None:
            raise InvalidValue(f"Attribute '{attr.name}' has no sub-attribute '{key}'.")
        if sub_value is None or sub.mutability == "readOnly":
            continue
        if sub.multi_valued:
            out[sub.name] = [coerce_simple(sub, item) for item in _as_list(sub, sub_value)]
        else:
            out[sub.name] = coerce_simple(sub, sub_value)
    return out


def _as_list(attr: Attribute, value: Any) -> list[Any]:
    if type(value) is not list:
        raise _fail(attr, value, "a JSON array")
    return value


def coerce_value(attr: Attribute, value: Any) -> Any:
    """Check a whole attribute value (single or multi-valued); None means unassigned."""
    if is_unassigned(value):
        return None
    if not attr.multi_valued:
        return coerce_complex(attr, value) if attr.is_complex else coerce_simple(attr, value)
    items = _as_list(attr, value)
    if attr.is_complex:
        coerced = [c for c in (coerce_complex(attr, item) for item in items) if c]
        check_single_primary(attr, coerced)
        return dedupe(attr, coerced) or None
    return [coerce_simple(attr, item) for item in items if item is not None] or None


def check_single_primary(attr: Attribute, items: list[dict[str, Any]]) -> None:
    """The primary value "true" MUST appear no more than once (RFC 7643 §2.4)."""
    if sum(1 for item in items if item.get("primary") is True) > 1:
        raise InvalidValue(f"Attribute '{attr.name}' has more than one primary value.")


def identity_key(attr: Attribute, item: dict[str, Any]) -> Any:
    """What makes two values of a multi-valued complex attribute the same value.

    When `value` is immutable (group `members`), the value *is* the identity: a member sent
    again with another `display` is the same member. Otherwise the whole value is compared.
    """
    value_sub = attr.sub("value")
    if value_sub is not None and value_sub.mutability == "immutable" and "value" in item:
        return ("value", item["value"])
    return ("item", tuple(sorted((k, repr(v)) for k, v in item.items())))


def dedupe(attr: Attribute, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeated values, keeping the first occurrence's position."""
    seen: set[Any] = set()
    out: list[dict[str, Any]] = []
    for item in items:
        key = identity_key(attr, item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
