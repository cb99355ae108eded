"""Schema resolution, checking and in-memory evaluation of SCIM filters.

* `resolve` maps an attribute path to its definition: core schema attributes, the common
  attributes of RFC 7643 §3.1 (plus `schemas`, RFC 7643 §3), and URN-qualified extension
  attributes (RFC 7643 §3.3). Names and URNs are case-insensitive (RFC 7643 §2.1).
* `check_filter` rejects, with InvalidFilter, what RFC 7644 §3.4.2.2 says a service must refuse
  or what cannot be compared; run it once per request, before `matches`.
* `matches` evaluates a checked filter against one stored resource (RFC 7644 §3.4.2.2).
* `check_value_filter` and `value_matches` do the same for the bracketed filter of a PATCH
  path (RFC 7644 §3.5.2), whose paths are relative to one multi-valued complex attribute.

Stored resources keep core and common attributes at the top level and extension attributes in
a sub-object under the extension's schema id, all under the schema's canonical names.

Decisions where RFC 7644 leaves room:

* A comparison value must have the attribute's JSON type: a string for string, reference,
  binary and dateTime (which must also parse as ISO 8601), true/false for boolean, a number for
  integer and decimal. Anything else is "invalidFilter" (RFC 7644 §3.12: the "attribute and
  filter comparison combination is not supported").
* `null` may only be used with `eq` (attribute absent or null) and `ne` (attribute has a value).
* `co`/`sw`/`ew` need a string-like attribute; `gt`/`ge`/`lt`/`le` on boolean or binary
  attributes are refused as RFC 7644 §3.4.2.2 requires.
* Multi-valued attributes match if any value matches, `ne` included (`emails.type ne "work"`
  matches a user with a home email); `ne` on an absent attribute matches.
* A complex attribute compared without a sub-attribute (`emails co "example.com"`) is compared
  through its "value" sub-attribute.
* Strings order by code point, casefolded unless the attribute is caseExact; dateTimes order
  chronologically, a missing UTC offset meaning UTC; `co`/`sw`/`ew` on a dateTime match its text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from pipeline.errors import InvalidFilter
from pipeline.scim.filters import (
    And,
    Compare,
    CompareOp,
    Filter,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
    chain_operands,
)
from pipeline.scim.paths import AttrPath, render_attr_path
from pipeline.scim.schema import (
    COMMON_BY_LOWER_NAME,
    Attribute,
    AttrType,
    Mutability,
    ResourceType,
)

# RFC 7643 §3: every resource carries "schemas", but no schema document defines it.
SCHEMAS_ATTRIBUTE: Final = Attribute(
    "schemas",
    AttrType.REFERENCE,
    multi_valued=True,
    mutability=Mutability.READ_ONLY,
    reference_types=("uri",),
    description="The URIs of the schemas the resource uses.",
)

_ORDERING_OPS: Final = frozenset(("gt", "ge", "lt", "le"))
_SUBSTRING_OPS: Final = frozenset(("co", "sw", "ew"))
_STRING_TYPES: Final = frozenset(
    (AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY, AttrType.DATETIME)
)
_NUMBER_TYPES: Final = frozenset((AttrType.INTEGER, AttrType.DECIMAL))
_UNORDERED_TYPES: Final = frozenset((AttrType.BOOLEAN, AttrType.BINARY))

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


# --- Resolution ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Located:
    """A top-level attribute definition and the key of the sub-object holding its value."""

    attr: Attribute
    container: str | None  # the extension's schema id; None for top-level attributes


def resolve(
    path: AttrPath, resource_type: ResourceType, parent: Attribute | None = None
) -> Attribute | None:
    """Find the definition `path` names, or None if the resource type has no such attribute.

    With `parent`, `path` is relative to that complex attribute (the paths inside a
    valuePath's brackets) and may not carry a URN. A whole-extension path (empty name)
    resolves to None: it names a schema, see `ResourceType.schema_for`.
    """
    return _resolve(path, resource_type, parent)


def _resolve(
    path: AttrPath, resource_type: ResourceType | None, parent: Attribute | None
) -> Attribute | None:
    # Relative paths need only `parent`, so PATCH value filters resolve without a resource type.
    top: Attribute | None = None
    if parent is not None:
        top = parent.sub(path.name) if path.urn is None else None
    elif resource_type is not None:
        located = _locate(path, resource_type)
        top = located.attr if located is not None else None
    if top is None or path.sub is None:
        return top
    return top.sub(path.sub)


def _locate(path: AttrPath, resource_type: ResourceType) -> _Located | None:
    if not path.name:
        return None
    core = resource_type.schema
    if path.urn is None or path.urn.lower() == core.id.lower():
        # Common attributes belong to no schema (RFC 7643 §3.1), but a core-URN-qualified
        # "id" or "meta.lastModified" is unambiguous, so accept it.
        attr = core.attribute(path.name) or _common_attribute(path.name)
        return _Located(attr, None) if attr is not None else None
    schema = resource_type.schema_for(path.urn)
    attr = schema.attribute(path.name) if schema is not None else None
    return _Located(attr, schema.id) if schema is not None and attr is not None else None


def _common_attribute(name: str) -> Attribute | None:
    lowered = name.lower()
    if lowered == SCHEMAS_ATTRIBUTE.name:
        return SCHEMAS_ATTRIBUTE
    return COMMON_BY_LOWER_NAME.get(lowered)


# --- Checking --------------------------------------------------------------------------------


def check_filter(f: Filter, resource_type: ResourceType) -> None:
    """Raise InvalidFilter if `f` cannot be evaluated against `resource_type`.

    Refuses unknown attributes, value paths on anything but complex attributes, ordering
    operators on boolean and binary attributes (RFC 7644 §3.4.2.2), and comparison values of
    the wrong type (see the module docstring).
    """
    _check(f, resource_type, None)


def check_value_filter(f: Filter, attr: Attribute) -> None:
    """Raise InvalidFilter if `f`, a valuePath filter relative to `attr`, cannot be evaluated.

    For the `[...]` part of a PATCH path (RFC 7644 §3.5.2); the rules are `check_filter`'s.
    """
    if not attr.is_complex:
        raise InvalidFilter(f"{attr.name!r} is not a complex attribute; it cannot be filtered.")
    _check(f, None, attr)


def _check(f: Filter, resource_type: ResourceType | None, parent: Attribute | None) -> None:
    if isinstance(f, And | Or):
        for operand in chain_operands(f):
            _check(operand, resource_type, parent)
    elif isinstance(f, Not):
        _check(f.inner, resource_type, parent)
    elif isinstance(f, Present):
        _require(f.path, resource_type, parent)
    elif isinstance(f, Compare):
        leaf = _comparison_leaf(_require(f.path, resource_type, parent), f.path)
        _check_operand(leaf, f)
    else:
        _check_value_path(f, resource_type, parent)


def _check_value_path(
    f: ValuePath, resource_type: ResourceType | None, parent: Attribute | None
) -> None:
    if parent is not None:
        raise InvalidFilter("A value path cannot be nested in another (RFC 7644 §3.4.2.2).")
    attr = _require(f.path, resource_type, None)
    if f.path.sub is not None or not attr.is_complex:
        raise InvalidFilter(f"{render_attr_path(f.path)!r} is not a complex attribute.")
    _check(f.filter, resource_type, attr)


def _require(
    path: AttrPath, resource_type: ResourceType | None, parent: Attribute | None
) -> Attribute:
    attr = _resolve(path, resource_type, parent)
    if attr is None:
        where = f" of {parent.name!r}" if parent is not None else ""
        raise InvalidFilter(f"Unknown attribute {render_attr_path(path)!r}{where}.")
    return attr


def _comparison_leaf(attr: Attribute, path: AttrPath) -> Attribute:
    """The attribute whose values a comparison reads: a complex one compares its "value"."""
    if not attr.is_complex:
        return attr
    value = attr.sub("value")
    if value is None:
        raise InvalidFilter(
            f"{render_attr_path(path)!r} is complex; compare one of its sub-attributes."
        )
    return value


def _check_operand(leaf: Attribute, f: Compare) -> None:
    shown = render_attr_path(f.path)
    if f.value is None:
        if f.op not in ("eq", "ne"):
            raise InvalidFilter(f"Operator {f.op!r} cannot compare with null.")
        return
    if f.op in _ORDERING_OPS and leaf.type in _UNORDERED_TYPES:
        raise InvalidFilter(f"Operator {f.op!r} cannot order the {leaf.type} attribute {shown!r}.")
    if f.op in _SUBSTRING_OPS and leaf.type not in _STRING_TYPES:
        raise InvalidFilter(f"Operator {f.op!r} needs a string attribute, not {shown!r}.")
    if not _operand_fits(leaf.type, f.op, f.value):
        raise InvalidFilter(
            f"{shown!r} is a {leaf.type} attribute and cannot be compared with {_brief(f.value)}."
        )


def _operand_fits(attr_type: AttrType, op: CompareOp, value: Value) -> bool:
    if attr_type is AttrType.BOOLEAN:
        return isinstance(value, bool)
    if attr_type in _NUMBER_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if attr_type is AttrType.DATETIME and op not in _SUBSTRING_OPS:
        return isinstance(value, str) and _parse_datetime(value) is not None
    return attr_type in _STRING_TYPES and isinstance(value, str)


def _brief(value: Value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


# --- Evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where paths are looked up: a whole resource, or (with `parent`) one value of the complex
    attribute a valuePath filters, whose paths are relative (RFC 7644 §3.4.2.2)."""

    data: Mapping[str, Any]
    resource_type: ResourceType | None
    parent: Attribute | None = None


def matches(f: Filter, resource: Mapping[str, Any], resource_type: ResourceType) -> bool:
    """Evaluate `f` against one stored resource (RFC 7644 §3.4.2.2).

    Expects a filter that passed `check_filter`. Given an unchecked one it raises
    InvalidFilter for unknown attributes and treats impossible comparisons as non-matching;
    it raises nothing else.
    """
    return _evaluate(f, _Scope(resource, resource_type))


def value_matches(f: Filter, item: Any, attr: Attribute) -> bool:
    """Evaluate a valuePath filter relative to `attr` against one of its values.

    For selecting the values a PATCH path's `[...]` filter targets (RFC 7644 §3.5.2); expects
    a filter that passed `check_value_filter`. A value that is not an object never matches.
    """
    if not isinstance(item, Mapping) or not attr.is_complex:
        return False
    return _evaluate(f, _Scope(item, None, attr))


def _evaluate(f: Filter, scope: _Scope) -> bool:
    if isinstance(f, And):
        return all(_evaluate(operand, scope) for operand in chain_operands(f))
    if isinstance(f, Or):
        return any(_evaluate(operand, scope) for operand in chain_operands(f))
    if isinstance(f, Not):
        return not _evaluate(f.inner, scope)
    if isinstance(f, Present):
        _, values = _leaf_values(f.path, scope, implicit_value=False)
        return any(_is_present(value) for value in values)
    if isinstance(f, Compare):
        return _evaluate_compare(f, scope)
    return _evaluate_value_path(f, scope)


def _evaluate_compare(f: Compare, scope: _Scope) -> bool:
    leaf, values = _leaf_values(f.path, scope, implicit_value=True)
    if f.value is None:
        # "eq null": the attribute is absent or null; "ne null": it has a value.
        return not values if f.op == "eq" else f.op == "ne" and bool(values)
    if not values:
        return f.op == "ne"  # RFC 7644 §3.4.2.2: no value is "not equal" to anything
    if f.op == "ne":
        return any(not _compare(leaf, "eq", value, f.value) for value in values)
    return any(_compare(leaf, f.op, value, f.value) for value in values)


def _evaluate_value_path(f: ValuePath, scope: _Scope) -> bool:
    attr, raw = _top_value(f.path, scope)
    if scope.parent is not None or f.path.sub is not None or not attr.is_complex:
        return False
    elements = [item for item in _as_list(raw) if isinstance(item, Mapping)]
    return any(
        _evaluate(f.filter, _Scope(element, scope.resource_type, attr)) for element in elements
    )


def _top_value(path: AttrPath, scope: _Scope) -> tuple[Attribute, Any]:
    """The definition of the path's first segment and its raw value in `scope`."""
    container: Any = scope.data
    attr: Attribute | None
    if scope.parent is not None:
        attr = scope.parent.sub(path.name) if path.urn is None else None
    else:
        located = _locate(path, scope.resource_type) if scope.resource_type else None
        attr = located.attr if located is not None else None
        if located is not None and located.container is not None:
            container = container.get(located.container)
    if attr is None:
        raise InvalidFilter(f"Unknown attribute {render_attr_path(path)!r}.")
    return attr, container.get(attr.name) if isinstance(container, Mapping) else None


def _leaf_values(
    path: AttrPath, scope: _Scope, *, implicit_value: bool
) -> tuple[Attribute, list[Any]]:
    """The attribute a path ends at and all its non-null values, multi-valued ones flattened.

    With `implicit_value`, a complex attribute without a sub-attribute stands for its "value"
    sub-attribute (`emails co "example.com"`).
    """
    attr, raw = _top_value(path, scope)
    sub_name = path.sub
    if sub_name is None and implicit_value and attr.is_complex:
        sub_name = "value"
    if sub_name is None:
        return attr, _as_list(raw)
    leaf = attr.sub(sub_name)
    if leaf is None:
        raise InvalidFilter(f"Unknown attribute {render_attr_path(path)!r}.")
    values: list[Any] = []
    for item in _as_list(raw):
        if isinstance(item, Mapping):
            values.extend(_as_list(item.get(leaf.name)))
    return leaf, values


def _as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return [item for item in raw if item is not None]
    return [raw]


def _is_present(value: Any) -> bool:
    """RFC 7644 §3.4.2.2 "pr": a non-empty value, or a complex value with a non-empty part."""
    if value is None or value == "":
        return False
    if isinstance(value, Mapping):
        return any(_is_present(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_is_present(item) for item in value)
    return True


def _compare(leaf: Attribute, op: CompareOp, stored: Any, wanted: Value) -> bool:
    """Compare one stored value with the filter's value by the attribute's type (§3.4.2.2)."""
    if leaf.type is AttrType.DATETIME and op not in _SUBSTRING_OPS:
        return _compare_datetimes(op, stored, wanted)
    if leaf.type is AttrType.BOOLEAN:
        both_bool = isinstance(stored, bool) and isinstance(wanted, bool)
        return both_bool and op in ("eq", "ne") and _OPERATORS[op](stored, wanted)
    if leaf.type in _NUMBER_TYPES:
        comparable = _is_number(stored) and _is_number(wanted) and op not in _SUBSTRING_OPS
        return comparable and _OPERATORS[op](stored, wanted)
    if leaf.type in _STRING_TYPES and isinstance(stored, str) and isinstance(wanted, str):
        if leaf.type is AttrType.BINARY and op in _ORDERING_OPS:
            return False
        if not leaf.case_exact:
            stored, wanted = stored.casefold(), wanted.casefold()
        return _OPERATORS[op](stored, wanted)
    return False


def _compare_datetimes(op: CompareOp, stored: Any, wanted: Value) -> bool:
    if not isinstance(stored, str) or not isinstance(wanted, str):
        return False
    stored_at, wanted_at = _parse_datetime(stored), _parse_datetime(wanted)
    if stored_at is None or wanted_at is None:
        return False
    return _OPERATORS[op](stored_at, wanted_at)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@lru_cache(maxsize=4096)
def _parse_datetime(text: str) -> datetime | None:
    """Parse an xsd:dateTime (RFC 7643 §2.3.5); a missing offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
