"""Filters resolved against a resource type, checked and evaluated in memory (RFC 7644 §3.4.2.2),
for searches and for the `[...]` filter of a PATCH path (§3.5.2). `resolve` (core, common and
URN-qualified extension attributes, names and URNs case-insensitive as RFC 7643 §2.1 says) is the
one resolution of every filter and sortBy path, in memory and in SQL alike, and refuses what is
never returned.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)"; what filters refuse and
how they match is in its "Decisions worth knowing").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from scimflow.pipeline.errors import InvalidFilter
from scimflow.pipeline.scim.comparison import (
    NUMBER_TYPES,
    ORDERING_OPS,
    STRING_TYPES,
    SUBSTRING_OPS,
    UNORDERED_TYPES,
    compare,
    is_number,
    parse_datetime,
)
from scimflow.pipeline.scim.filters import (
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
from scimflow.pipeline.scim.paths import AttrPath, render_attr_path
from scimflow.pipeline.scim.schema import (
    COMMON_BY_LOWER_NAME,
    Attribute,
    AttrType,
    Mutability,
    ResourceType,
    Returned,
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

# --- Resolution ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Located:
    """A top-level attribute definition and the key of the sub-object holding its value."""

    attr: Attribute
    container: str | None  # the extension's schema id; None for top-level attributes


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A searchable path: its first segment, where that is kept, and the attribute it ends at."""

    top: _Located
    leaf: Attribute  # `top.attr` itself when the path names no sub-attribute


def resolve(
    path: AttrPath, resource_type: ResourceType, parent: Attribute | None = None
) -> Attribute | None:
    """Find the definition `path` names, or None if the resource type has no such attribute.

    With `parent`, `path` is relative to that complex attribute (the paths inside a
    valuePath's brackets) and may not carry a URN. A whole-extension path (empty name)
    resolves to None: it names a schema, see `ResourceType.schema_for`.

    Raises InvalidFilter if the attribute, or the attribute it belongs to, is never returned.
    """
    return _resolve(path, resource_type, parent)


def _resolve(
    path: AttrPath, resource_type: ResourceType | None, parent: Attribute | None
) -> Attribute | None:
    resolved = _resolve_searchable(path, resource_type, parent)
    return resolved.leaf if resolved is not None else None


def _resolve_searchable(
    path: AttrPath, resource_type: ResourceType | None, parent: Attribute | None
) -> _Resolved | None:
    """The one resolution of a filter or sort path: checking, evaluation and SQL all use it,
    so none of them can reach an attribute that is never returned."""
    top = _locate_top(path, resource_type, parent)
    if top is None:
        return None
    leaf = top.attr if path.sub is None else top.attr.sub(path.sub)
    if leaf is None:
        return None
    enclosing = (parent, top.attr, leaf) if parent is not None else (top.attr, leaf)
    if any(attr.returned is Returned.NEVER for attr in enclosing):
        # A filter's result count would reveal what no response shows (RFC 7643 §2.2).
        raise InvalidFilter(f"{render_attr_path(path)!r} is never returned, so not searchable.")
    return _Resolved(top, leaf)


def _locate_top(
    path: AttrPath, resource_type: ResourceType | None, parent: Attribute | None
) -> _Located | None:
    # Relative paths need only `parent`, so PATCH value filters resolve without a resource type.
    if parent is not None:
        attr = parent.sub(path.name) if path.urn is None else None
        return _Located(attr, None) if attr is not None else None
    return _locate(path, resource_type) if resource_type is not None else None


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
        _check_operand(_comparison_leaf(f.path, resource_type, parent), f)
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


def _comparison_leaf(
    path: AttrPath, resource_type: ResourceType | None, parent: Attribute | None
) -> Attribute:
    """The attribute whose values a comparison reads: a complex one compares its "value"."""
    attr = _require(path, resource_type, parent)
    if not attr.is_complex:
        return attr
    value = _resolve(_implicit_value(path), resource_type, parent)
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
    if f.op in ORDERING_OPS and leaf.type in UNORDERED_TYPES:
        raise InvalidFilter(f"Operator {f.op!r} cannot order the {leaf.type} attribute {shown!r}.")
    if f.op in SUBSTRING_OPS and leaf.type not in STRING_TYPES:
        raise InvalidFilter(f"Operator {f.op!r} needs a string attribute, not {shown!r}.")
    if not _operand_fits(leaf.type, f.op, f.value):
        raise InvalidFilter(
            f"{shown!r} is a {leaf.type} attribute and cannot be compared with {_brief(f.value)}."
        )


def _implicit_value(path: AttrPath) -> AttrPath:
    """`emails` compared as a whole stands for `emails.value` (RFC 7644 §3.4.2.2)."""
    return AttrPath(path.urn, path.name, "value")


def _operand_fits(attr_type: AttrType, op: CompareOp, value: Value) -> bool:
    if attr_type is AttrType.BOOLEAN:
        return isinstance(value, bool)
    if attr_type in NUMBER_TYPES:
        return is_number(value)
    if attr_type is AttrType.DATETIME and op not in SUBSTRING_OPS:
        return isinstance(value, str) and parse_datetime(value) is not None
    return attr_type in STRING_TYPES and isinstance(value, str)


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
        leaf, values = _leaf_values(f.path, scope, implicit_value=False)
        return any(_is_present(value, leaf) for value in values)
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
        return any(not compare(leaf, "eq", value, f.value) for value in values)
    return any(compare(leaf, f.op, value, f.value) for value in values)


def _evaluate_value_path(f: ValuePath, scope: _Scope) -> bool:
    resolved = _resolved_in(f.path, scope)
    attr = resolved.top.attr
    if scope.parent is not None or f.path.sub is not None or not attr.is_complex:
        return False
    raw = _raw_value(resolved.top, scope.data)
    elements = [item for item in _as_list(raw) if isinstance(item, Mapping)]
    return any(
        _evaluate(f.filter, _Scope(element, scope.resource_type, attr)) for element in elements
    )


def _resolved_in(path: AttrPath, scope: _Scope) -> _Resolved:
    resolved = _resolve_searchable(path, scope.resource_type, scope.parent)
    if resolved is None:
        raise InvalidFilter(f"Unknown attribute {render_attr_path(path)!r}.")
    return resolved


def _raw_value(top: _Located, data: Mapping[str, Any]) -> Any:
    """The value of a path's first segment in `data`, inside its extension's sub-object."""
    container = data if top.container is None else data.get(top.container)
    return container.get(top.attr.name) if isinstance(container, Mapping) else None


def _leaf_values(
    path: AttrPath, scope: _Scope, *, implicit_value: bool
) -> tuple[Attribute, list[Any]]:
    """The attribute a path ends at and all its non-null values, multi-valued ones flattened.

    With `implicit_value`, a complex attribute without a sub-attribute stands for its "value"
    sub-attribute (`emails co "example.com"`).
    """
    resolved = _resolved_in(path, scope)
    if path.sub is None and implicit_value and resolved.top.attr.is_complex:
        resolved = _resolved_in(_implicit_value(path), scope)
    raw = _raw_value(resolved.top, scope.data)
    if resolved.leaf is resolved.top.attr:
        return resolved.leaf, _as_list(raw)
    values: list[Any] = []
    for item in _as_list(raw):
        if isinstance(item, Mapping):
            values.extend(_as_list(item.get(resolved.leaf.name)))
    return resolved.leaf, values


def _as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return [item for item in raw if item is not None]
    return [raw]


def _is_present(value: Any, attr: Attribute) -> bool:
    """RFC 7644 §3.4.2.2 "pr": a non-empty value, or a complex value with a non-empty part.

    Parts that are never returned do not count: `pr` would tell whether they are set.
    """
    if value is None or value == "":
        return False
    if isinstance(value, Mapping):
        return any(
            _is_present(value.get(sub.name), sub)
            for sub in attr.sub_attributes
            if sub.returned is not Returned.NEVER
        )
    if isinstance(value, list | tuple):
        return any(_is_present(item, attr) for item in value)
    return True
