"""Applying canonical PATCH operations to a canonical resource (RFC 7644 §3.5.2): pure and atomic,
reporting whether anything changed.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from scimflow.pipeline.errors import Mutability, NoTarget
from scimflow.pipeline.scim.evaluate import value_matches
from scimflow.pipeline.scim.filters import And, Compare, Filter
from scimflow.pipeline.scim.patch import PatchOperation, Target
from scimflow.pipeline.scim.schema import Attribute, ResourceType
from scimflow.pipeline.scim.schema import Mutability as Mut
from scimflow.pipeline.scim.validation import check_required
from scimflow.pipeline.scim.values import identity_key

Resource = dict[str, Any]
Items = list[Any]


def apply_operations(
    resource: Mapping[str, Any], operations: Iterable[PatchOperation], resource_type: ResourceType
) -> tuple[Resource, bool]:
    """Apply all operations or none; return the new resource and whether it changed."""
    new: Resource = dict(resource)
    for operation in operations:
        _apply(new, operation)
    for schema_id in [key for key in new if key.startswith("urn:") and not new[key]]:
        del new[schema_id]
    check_required(resource_type, new, Mutability)
    return new, new != resource


def _apply(resource: Resource, operation: PatchOperation) -> None:
    target = operation.target
    container = resource if target.is_core else dict(resource.get(target.schema.id) or {})
    name = target.attr.name
    updated = _new_value(container.get(name), operation)
    if updated is None:
        container.pop(name, None)
    else:
        container[name] = updated
    if not target.is_core:
        resource[target.schema.id] = container


def _new_value(current: Any, operation: PatchOperation) -> Any:
    target = operation.target
    if target.attr.multi_valued:
        return _multi(current, operation)
    if target.sub is not None:
        return _single_sub(current, operation)
    return _single(current, operation)


def _single(current: Any, operation: PatchOperation) -> Any:
    attr = operation.target.attr
    if operation.op == "remove":
        _check_immutable_change(attr, current, None)
        return None
    if attr.is_complex:
        # Complex replace/add merges sub-attributes; those not given are left unchanged.
        merged = {**(current or {}), **operation.value}
        _check_immutable_subs(attr, current or {}, merged)
        return merged
    _check_immutable_change(attr, current, operation.value)
    return operation.value


def _single_sub(current: Any, operation: PatchOperation) -> Any:
    sub = operation.target.sub
    assert sub is not None
    values = dict(current or {})
    if operation.op == "remove":
        _check_immutable_change(sub, values.get(sub.name), None)
        values.pop(sub.name, None)
    else:
        _check_immutable_change(sub, values.get(sub.name), operation.value)
        values[sub.name] = operation.value
    return values or None


def _multi(current: Any, operation: PatchOperation) -> Any:
    items: Items = list(current or [])
    target = operation.target
    if target.value_filter is None and target.sub is None:
        result = _whole_multi(items, operation)
    else:
        result = _selected_multi(items, operation)
    if target.attr.is_complex:
        _enforce_single_primary(result, items)
    return result or None


def _whole_multi(items: Items, operation: PatchOperation) -> Items:
    attr = operation.target.attr
    if operation.op == "remove":
        return []
    if operation.op == "replace":
        return list(operation.value)
    if not attr.is_complex:
        return items + [v for v in operation.value if v not in items]
    present = {identity_key(attr, item) for item in items}
    return items + [v for v in operation.value if identity_key(attr, v) not in present]


def _selected_multi(items: Items, operation: PatchOperation) -> Items:
    target = operation.target
    selected = _select(items, target)
    if operation.op == "remove":
        return _remove_selected(items, selected, target)
    if not selected:
        if operation.op == "replace":
            # RFC 7644 §3.5.2.3: a value filter that matches nothing is a noTarget failure.
            raise NoTarget(f"No value of '{target.path}' matches the filter.")
        return [*items, _new_item_from_filter(target, operation.value)]
    update = _sub_setter(target, operation.value) if target.sub else _whole_setter(operation)
    return [update(item) if index in selected else item for index, item in enumerate(items)]


def _select(items: Items, target: Target) -> set[int]:
    if target.value_filter is None:
        return set(range(len(items)))
    value_filter = target.value_filter
    return {
        index for index, item in enumerate(items)
        if value_matches(value_filter, item, target.attr)
    }


def _remove_selected(items: Items, selected: set[int], target: Target) -> Items:
    # Removing what is not there is a no-op, so an IdP replaying a removal changes nothing.
    sub = target.sub
    if sub is None:
        # Immutability guards a value's sub-attributes; removing the whole value is allowed.
        return [item for index, item in enumerate(items) if index not in selected]
    out: Items = []
    for index, item in enumerate(items):
        kept = item
        if index in selected:
            _check_immutable_change(sub, item.get(sub.name), None)
            kept = {k: v for k, v in item.items() if k != sub.name}
        if kept:
            out.append(kept)
    return out


def _sub_setter(target: Target, value: Any) -> Callable[[Any], Any]:
    sub = target.sub
    assert sub is not None

    def set_sub(item: dict[str, Any]) -> dict[str, Any]:
        _check_immutable_change(sub, item.get(sub.name), value)
        return {**item, sub.name: value}

    return set_sub


def _whole_setter(operation: PatchOperation) -> Callable[[Any], Any]:
    attr = operation.target.attr

    def set_item(item: Any) -> Any:
        if not attr.is_complex:
            return operation.value
        new = (
            {**item, **operation.value} if operation.op == "add" else dict(operation.value)
        )
        _check_immutable_subs(attr, item, new)
        return new

    return set_item


def _new_item_from_filter(target: Target, value: Any) -> Any:
    """Add through a value filter that matches nothing: create the value the filter describes.

    Entra sends `add` of `emails[type eq "work"].value` when the user has no work email yet.
    Only a filter made of `eq` comparisons joined by `and` describes one value unambiguously.
    """
    equalities = _equalities(target.value_filter)
    if equalities is None:
        raise NoTarget(f"No value of '{target.path}' matches the filter.")
    attributes = _canonical_subs(target.attr, equalities)
    if target.sub is not None:
        return {**attributes, target.sub.name: value}
    return {**attributes, **value} if isinstance(value, dict) else value


def _canonical_subs(attr: Attribute, equalities: dict[str, Any]) -> dict[str, Any]:
    # Filter names are case-insensitive and kept as written (`Type eq "work"`), but the stored
    # value must use schema-cased names or the filter would not match it on replay. `eq null`
    # asks for an absent sub-attribute, and canonical resources hold no nulls (RFC 7643 §2.5).
    out: dict[str, Any] = {}
    for name, value in equalities.items():
        sub = attr.sub(name)
        if sub is not None and value is not None:
            out[sub.name] = value
    return out


def _equalities(value_filter: Filter | None) -> dict[str, Any] | None:
    if isinstance(value_filter, Compare) and value_filter.op == "eq":
        return {value_filter.path.name: value_filter.value}
    if isinstance(value_filter, And):
        left, right = _equalities(value_filter.left), _equalities(value_filter.right)
        if left is not None and right is not None:
            return {**left, **right}
    return None


def _enforce_single_primary(items: Items, before: Items) -> None:
    """Setting a value primary makes every other value non-primary (RFC 7644 §3.5.2)."""
    primaries = [i for i, item in enumerate(items) if item.get("primary") is True]
    if len(primaries) <= 1:
        return
    newest = _last_written_primary(items, primaries, before)
    for index in primaries:
        if index != newest:
            items[index] = {**items[index], "primary": False}


def _last_written_primary(items: Items, primaries: list[int], before: Items) -> int:
    # Operations never mutate a value, they write a new object: so the primary this operation
    # wrote is the one that is not an object of `before`, wherever it sits in the list (a
    # primary set through `emails[type eq "home"].primary` may come before the old one).
    untouched = {id(item) for item in before}
    for index in reversed(primaries):
        if id(items[index]) not in untouched:
            return index
    return primaries[-1]


def _check_immutable_change(attr: Attribute, current: Any, new: Any) -> None:
    if attr.mutability is Mut.IMMUTABLE and current is not None and current != new:
        raise Mutability(f"Attribute '{attr.name}' is immutable and cannot be changed.")


def _check_immutable_subs(attr: Attribute, current: Mapping[str, Any], new: Any) -> None:
    for sub in attr.sub_attributes:
        if sub.mutability is Mut.IMMUTABLE and sub.name in current:
            _check_immutable_change(sub, current[sub.name], new.get(sub.name))
