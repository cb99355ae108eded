"""PATCH requests (RFC 7644 §3.5.2) normalised by `normalise_patch` into canonical, resolved
`PatchOperation`s, whatever quirks the IdP has. A path-less `add` or `replace` becomes one
operation per attribute, which is exactly RFC semantics (sub-attributes not given are left
unchanged). Applying them is `patch_apply.apply_operations`.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from scimflow.pipeline.errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from scimflow.pipeline.ports import PasswordProtector
from scimflow.pipeline.scim.evaluate import check_value_filter
from scimflow.pipeline.scim.filters import Filter, render_filter
from scimflow.pipeline.scim.idp_quirks import undo_patch_quirks
from scimflow.pipeline.scim.patch_paths import PatchPath, parse_path
from scimflow.pipeline.scim.paths import AttrPath
from scimflow.pipeline.scim.schema import (
    COMMON_BY_LOWER_NAME,
    Attribute,
    ResourceType,
    Schema,
)
from scimflow.pipeline.scim.schema import Mutability as Mut
from scimflow.pipeline.scim.values import coerce_complex, coerce_simple, coerce_value

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OpName = Literal["add", "remove", "replace"]
_OPS: frozenset[str] = frozenset(("add", "remove", "replace"))


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved PATCH target: an attribute, optionally a value filter and a sub-attribute."""

    schema: Schema
    is_core: bool
    attr: Attribute
    value_filter: Filter | None = None
    sub: Attribute | None = None

    @property
    def path(self) -> str:
        """Canonical path text (schema-cased names, URN prefix for extension attributes)."""
        text = self.attr.name if self.is_core else f"{self.schema.id}:{self.attr.name}"
        if self.value_filter is not None:
            text += f"[{render_filter(self.value_filter)}]"
        if self.sub is not None:
            text += f".{self.sub.name}"
        return text


@dataclass(frozen=True, slots=True)
class PatchOperation:
    op: OpName
    target: Target
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "path": self.target.path}
        if self.op != "remove":
            out["value"] = self.value
        return out


def normalise_patch(
    payload: Any, resource_type: ResourceType, protect_password: PasswordProtector | None = None
) -> tuple[PatchOperation, ...]:
    """Validate a PatchOp request body and return its canonical operations, in order."""
    raw_operations = _raw_operations(payload)
    operations: list[PatchOperation] = []
    for raw in undo_patch_quirks(raw_operations):
        operations.extend(_normalise_one(raw, resource_type, protect_password))
    return tuple(operations)


def decode_operations(
    encoded: list[dict[str, Any]], resource_type: ResourceType
) -> tuple[PatchOperation, ...]:
    """Rebuild operations from `PatchOperation.to_json` output (values already canonical)."""
    return tuple(
        PatchOperation(item["op"], resolve_path(item["path"], resource_type), item.get("value"))
        for item in encoded
    )


def _raw_operations(payload: Any) -> list[Any]:
    if type(payload) is not dict:
        raise InvalidSyntax("A PATCH body must be a JSON object.")
    schemas = payload.get("schemas")
    if type(schemas) is not list or not any(
        type(s) is str and s.lower() == PATCH_OP_SCHEMA.lower() for s in schemas
    ):
        raise InvalidSyntax(f"A PATCH body must declare the schema {PATCH_OP_SCHEMA}.")
    operations = next((v for k, v in payload.items() if k.lower() == "operations"), None)
    if type(operations) is not list or not operations:
        raise InvalidSyntax("A PATCH body must carry a non-empty 'Operations' array.")
    return operations


def _normalise_one(
    raw: Any, resource_type: ResourceType, protect_password: PasswordProtector | None
) -> Iterator[PatchOperation]:
    if type(raw) is not dict:
        raise InvalidSyntax("Each PATCH operation must be a JSON object.")
    raw_op = raw.get("op")
    # Checked as a string first: a JSON object or array is not hashable, so not `in` a set.
    if type(raw_op) is not str or raw_op not in _OPS:
        raise InvalidSyntax(f"Unsupported PATCH op {raw_op!r}; expected add, remove or replace.")
    op = cast(OpName, raw_op)
    path = raw.get("path")
    if path is not None and type(path) is not str:
        raise InvalidPath("The 'path' of a PATCH operation must be a string.")
    if op == "remove":
        yield from _remove(raw, path, resource_type)
        return
    if "value" not in raw:
        raise InvalidValue(f"A PATCH '{op}' operation needs a 'value'.")
    if path is None or path == "":
        pairs = _expand_pathless(raw["value"], resource_type)
    else:
        pairs = _expand_explicit(path, raw["value"], resource_type)
    for target, value in (pair for item in pairs for pair in _split_null_subs(*item)):
        operation = _with_value(op, target, value, protect_password)
        if operation is not None:
            yield operation


def _remove(
    raw: dict[str, Any], path: str | None, resource_type: ResourceType
) -> Iterator[PatchOperation]:
    # RFC 7644 §3.5.2.2: remove without a path fails with noTarget.
    if not path:
        raise NoTarget("A PATCH 'remove' operation needs a 'path'.")
    if raw.get("value") is not None:
        # A value array that names no `value` sub-attribute is not a documented quirk;
        # ignoring it would remove every value, so it is refused instead.
        raise InvalidValue("A PATCH 'remove' operation takes no 'value' for this path.")
    extension = _extension_named(path, resource_type)
    if extension is not None:
        # The path names a whole extension: remove each of its writable attributes.
        for attr in extension.attributes:
            target = Target(extension, False, attr)
            if not _is_read_only(target):
                yield PatchOperation("remove", target)
        return
    target = resolve_path(path, resource_type)
    _check_writable(target)
    yield PatchOperation("remove", target)


def _extension_named(path: str, resource_type: ResourceType) -> Schema | None:
    """The extension schema a path names as a whole (`urn:...:enterprise:2.0:User`)."""
    if not path.lower().startswith("urn:"):
        return None
    schema = resource_type.schema_for(path)
    return None if schema is None or schema is resource_type.schema else schema


def _split_null_subs(target: Target, value: Any) -> Iterator[tuple[Target, Any]]:
    """Null sub-attributes of a complex value unassign just those sub-attributes.

    Coercion drops nulls, and the merge leaves sub-attributes not given unchanged
    (RFC 7644 §3.5.2.3), so `{"givenName": null}` would otherwise be silently ignored.
    """
    attr = target.attr
    single_complex = attr.is_complex and not attr.multi_valued and target.sub is None
    if not single_complex or type(value) is not dict:
        yield target, value
        return
    nulls = [key for key, item in value.items() if item is None]
    given = {key: item for key, item in value.items() if key not in nulls}
    if given or not nulls:
        yield target, given
    for key in nulls:
        sub = attr.sub(key)
        if sub is None:
            raise InvalidValue(f"Attribute '{attr.name}' has no sub-attribute '{key}'.")
        if sub.mutability is not Mut.READ_ONLY:
            yield replace(target, sub=sub), None


def _expand_pathless(
    value: Any, resource_type: ResourceType
) -> Iterator[tuple[Target, Any]]:
    """Path-less add/replace: each key of the value names a target (RFC 7644 §3.5.2.1/3)."""
    if type(value) is not dict:
        raise InvalidValue("A PATCH operation without 'path' needs an object 'value'.")
    for key, item in value.items():
        if key.lower() in ("schemas", "meta", "id"):
            continue
        extension = resource_type.schema_for(key) if key.lower().startswith("urn:") else None
        if extension is not None:
            yield from _expand_extension(extension, item, resource_type)
            continue
        target = resolve_path(key, resource_type)
        if _is_read_only(target):
            continue  # read-only input inside a resource-shaped value is ignored (RFC 7643 §2.2)
        yield target, item


def _expand_extension(
    schema: Schema, value: Any, resource_type: ResourceType
) -> Iterator[tuple[Target, Any]]:
    if type(value) is not dict:
        raise InvalidValue(f"Extension {schema.id} must be given as a JSON object.")
    is_core = schema is resource_type.schema
    for name, item in value.items():
        if name.lower() == "schemas":
            continue  # some clients repeat the resource's `schemas` inside the extension
        attr = schema.attribute(name)
        if attr is None:
            raise InvalidPath(f"Attribute '{name}' is not defined in {schema.id}.")
        target = Target(schema, is_core, attr)
        if not _is_read_only(target):
            yield target, item


def _expand_explicit(
    path: str, value: Any, resource_type: ResourceType
) -> Iterator[tuple[Target, Any]]:
    extension = resource_type.schema_for(path) if path.lower().startswith("urn:") else None
    if extension is not None:
        yield from _expand_extension(extension, value, resource_type)
        return
    target = resolve_path(path, resource_type)
    _check_writable(target)
    yield target, value


def _with_value(
    op: OpName, target: Target, value: Any, protect_password: PasswordProtector | None
) -> PatchOperation | None:
    coerced = _coerce_for(target, value)
    if target.attr.mutability is Mut.WRITE_ONLY and coerced is not None:
        if protect_password is None:
            return None  # password policy `ignore`
        coerced = protect_password(coerced)
    if coerced is None:
        if op == "add" and _accumulates(target):
            # Adding no values appends or merges nothing; read as a removal, an `add` of
            # `members: []` would empty the group.
            return None
        # Setting an attribute to null unassigns it (RFC 7643 §2.5).
        return PatchOperation("remove", target)
    return PatchOperation(op, target, coerced)


def _accumulates(target: Target) -> bool:
    """Whether `add` appends to or merges into the target rather than set it (RFC 7644 §3.5.2.1)."""
    return target.sub is None and (target.attr.multi_valued or target.attr.is_complex)


def _coerce_for(target: Target, value: Any) -> Any:
    if target.sub is not None:
        return coerce_value(target.sub, value)
    attr = target.attr
    if not attr.multi_valued:
        return coerce_value(attr, value)
    if target.value_filter is None:
        # A single value added to a multi-valued attribute is the same as a one-item array;
        # null is no value but the unassigned state (RFC 7643 §2.5), so it is not wrapped.
        return coerce_value(attr, value if type(value) is list or value is None else [value])
    if value is None:
        return None
    if attr.is_complex:
        # `{}` (or only nulls) is as unassigned as null; stored, it would be an empty value.
        return coerce_complex(attr, value) or None
    return coerce_simple(attr, value)


def _is_read_only(target: Target) -> bool:
    attr = target.sub or target.attr
    return attr.mutability is Mut.READ_ONLY or target.attr.mutability is Mut.READ_ONLY


def _check_writable(target: Target) -> None:
    if _is_read_only(target):
        raise Mutability(f"Attribute '{target.path}' is read-only.")


def resolve_path(text: str, resource_type: ResourceType) -> Target:
    """Resolve a PATCH path against the resource type, or fail with invalidPath."""
    # IdPs send the same few paths over and over; a resolved Target is immutable.
    target: Target = resource_type.memoised(
        ("patch-path", text), lambda: _resolve_path(text, resource_type)
    )
    return target


def _resolve_path(text: str, resource_type: ResourceType) -> Target:
    parsed = parse_path(text, known_urns=resource_type.schema_ids)
    schema, attr = _resolve_attribute(parsed.attr, resource_type, text)
    sub_name = parsed.sub if parsed.value_filter is not None else parsed.attr.sub
    sub = _resolve_sub(attr, sub_name, text)
    if parsed.value_filter is not None:
        _check_filter_target(attr, parsed, text)
    return Target(schema, schema is resource_type.schema, attr, parsed.value_filter, sub)


def _resolve_attribute(
    path: AttrPath, resource_type: ResourceType, text: str
) -> tuple[Schema, Attribute]:
    schema = resource_type.schema if path.urn is None else resource_type.schema_for(path.urn)
    if schema is None:
        raise InvalidPath(f"Unknown schema in PATCH path {text!r}.")
    attr = schema.attribute(path.name)
    if attr is None and schema is resource_type.schema:
        attr = COMMON_BY_LOWER_NAME.get(path.name.lower())
    if attr is None:
        raise InvalidPath(f"PATCH path {text!r} names no attribute of {resource_type.name}.")
    return schema, attr


def _resolve_sub(attr: Attribute, name: str | None, text: str) -> Attribute | None:
    if name is None:
        return None
    sub = attr.sub(name) if attr.is_complex else None
    if sub is None:
        raise InvalidPath(f"PATCH path {text!r} names no sub-attribute '{name}'.")
    return sub


def _check_filter_target(attr: Attribute, parsed: PatchPath, text: str) -> None:
    if not attr.multi_valued or parsed.value_filter is None:
        raise InvalidPath(f"PATCH path {text!r} filters a single-valued attribute.")
    check_value_filter(parsed.value_filter, attr)


def operations_json(operations: tuple[PatchOperation, ...]) -> list[dict[str, Any]]:
    return [operation.to_json() for operation in operations]
