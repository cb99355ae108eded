"""Validation of POST and PUT bodies into canonical resources (RFC 7644 §3.3, §3.5.1).
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)", "The canonical resource").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scimflow.pipeline.errors import InvalidSyntax, InvalidValue, Mutability, ScimError
from scimflow.pipeline.ports import PasswordProtector
from scimflow.pipeline.scim.idp_quirks import undo_resource_quirks
from scimflow.pipeline.scim.schema import (
    COMMON_BY_LOWER_NAME,
    Attribute,
    ResourceType,
    Schema,
)
from scimflow.pipeline.scim.schema import Mutability as Mut
from scimflow.pipeline.scim.values import coerce_value

Resource = dict[str, Any]


class ResourceValidator:
    """Validates POST and PUT bodies of one resource type (with its tenant's extensions)."""

    __slots__ = ("_core_lookup", "protect_password", "resource_type")

    def __init__(
        self, resource_type: ResourceType, protect_password: PasswordProtector | None = None
    ) -> None:
        self.resource_type = resource_type
        # None means the password policy is `ignore`: passwords are dropped, never stored.
        self.protect_password = protect_password
        core = resource_type.schema
        self._core_lookup: dict[str, Attribute] = {
            **COMMON_BY_LOWER_NAME,
            **{a.name.lower(): a for a in core.attributes},
        }

    def create(self, payload: Any) -> Resource:
        """Validate a POST body (RFC 7644 §3.3) into a canonical resource."""
        resource = self._resource_from(undo_resource_quirks(payload))
        self._check_required(resource)
        return resource

    def replace(self, payload: Any, current: Mapping[str, Any]) -> Resource:
        """Validate a PUT body (RFC 7644 §3.5.1) against the resource it replaces."""
        resource = self._resource_from(undo_resource_quirks(payload))
        self._keep_unreplaceable(resource, current)
        self._check_required(resource)
        return resource

    def _resource_from(self, payload: Any) -> Resource:
        if type(payload) is not dict:
            raise InvalidSyntax("The request body must be a JSON object.")
        self._check_schemas(payload.get("schemas"))
        resource: Resource = {}
        for key, value in payload.items():
            if key == "schemas":
                continue
            lower = key.lower()
            if lower.startswith("urn:"):
                self._put_extension(resource, key, value)
                continue
            attr = self._core_lookup.get(lower)
            if attr is None:
                raise InvalidValue(
                    f"Attribute '{key}' is not defined for {self.resource_type.name}."
                )
            _put(resource, attr, value)
        self._protect_password(resource)
        return resource

    def _check_schemas(self, schemas: Any) -> None:
        if type(schemas) is not list or not schemas:
            raise InvalidSyntax("The 'schemas' attribute must be a non-empty array of URNs.")
        core_seen = False
        for urn in schemas:
            schema = self.resource_type.schema_for(urn) if type(urn) is str else None
            if schema is None:
                raise InvalidValue(
                    f"Schema {urn!r} is not supported for {self.resource_type.name}."
                )
            core_seen = core_seen or schema is self.resource_type.schema
        if not core_seen:
            raise InvalidValue(f"'schemas' must include {self.resource_type.schema.id}.")

    def _put_extension(self, resource: Resource, key: str, value: Any) -> None:
        schema = self.resource_type.schema_for(key)
        if schema is None:
            raise InvalidValue(f"Schema {key!r} is not supported for {self.resource_type.name}.")
        if value is None:
            return
        if type(value) is not dict:
            raise InvalidValue(f"Extension {schema.id} must be a JSON object.")
        if schema.id in resource:
            # The same URN twice in other case (URNs compare case-insensitively): keeping one
            # object would silently drop the other.
            raise InvalidValue(f"Extension {schema.id} is given more than once.")
        target = resource if schema is self.resource_type.schema else {}
        for name, sub_value in value.items():
            attr = schema.attribute(name)
            if attr is None:
                raise InvalidValue(f"Attribute '{name}' is not defined in {schema.id}.")
            _put(target, attr, sub_value)
        if target and target is not resource:
            resource[schema.id] = target

    def _protect_password(self, resource: Resource) -> None:
        password = resource.pop("password", None)
        if password is not None and self.protect_password is not None:
            resource["password"] = self.protect_password(password)

    def _check_required(self, resource: Resource) -> None:
        check_required(self.resource_type, resource)

    def _keep_unreplaceable(self, resource: Resource, current: Mapping[str, Any]) -> None:
        _keep_unreplaceable(self.resource_type.schema, resource, current)
        for ext in self.resource_type.extension_schemas:
            ext_current = current.get(ext.id)
            if ext_current:
                ext_new = resource.setdefault(ext.id, {})
                _keep_unreplaceable(ext, ext_new, ext_current)
                if not ext_new:
                    del resource[ext.id]


def _put(target: Resource, attr: Attribute, value: Any) -> None:
    # Read-only input is ignored, not rejected (RFC 7643 §2.2): Okta echoes id, meta and
    # groups back in its full-object PUT.
    if attr.mutability is Mut.READ_ONLY:
        return
    coerced = coerce_value(attr, value)
    if coerced is None:
        return
    if attr.name in target:
        raise InvalidValue(f"Attribute '{attr.name}' is given more than once.")
    target[attr.name] = coerced


def keep_write_only(
    resource_type: ResourceType, new: Resource, current: Mapping[str, Any]
) -> Resource:
    """A replacement keeps the write-only values it does not carry (the applied password hash:
    the acknowledged state a PUT was validated against holds none, see `store/acknowledged`)."""
    kept = dict(new)
    _keep_absent_write_only(resource_type.schema, kept, current)
    for ext in resource_type.extension_schemas:
        ext_current = current.get(ext.id)
        if isinstance(ext_current, Mapping):
            ext_kept = dict(kept.get(ext.id) or {})
            _keep_absent_write_only(ext, ext_kept, ext_current)
            if ext_kept:
                kept[ext.id] = ext_kept
    return kept


def _keep_absent_write_only(schema: Schema, new: Resource, current: Mapping[str, Any]) -> None:
    for attr in schema.attributes:
        if attr.mutability is Mut.WRITE_ONLY and attr.name in current and attr.name not in new:
            new[attr.name] = current[attr.name]


def _keep_unreplaceable(schema: Schema, new: Resource, current: Mapping[str, Any]) -> None:
    """PUT keeps write-only values it cannot see and refuses to change immutable ones.

    A client cannot echo a password it never reads back (returned "never"), so an absent
    password keeps the stored hash. Immutable values may be repeated but not changed
    (RFC 7644 §3.5.1).
    """
    for attr in schema.attributes:
        name = attr.name
        if name not in current:
            continue
        if attr.mutability is Mut.WRITE_ONLY and name not in new:
            new[name] = current[name]
        elif attr.mutability is Mut.IMMUTABLE:
            if name not in new:
                new[name] = current[name]
            elif new[name] != current[name]:
                raise Mutability(f"Attribute '{name}' is immutable and cannot be changed.")


def check_required(
    resource_type: ResourceType,
    resource: Mapping[str, Any],
    error: type[ScimError] = InvalidValue,
) -> None:
    """Every required, client-writable attribute must have a value (RFC 7643 §2.2).

    A body that lacks one is `invalidValue`; a PATCH that unassigns one is `mutability`
    (RFC 7644 §3.5.2.2), hence the error class parameter.
    """
    _check_required_in(resource_type.schema, resource, error)
    for ext in resource_type.extensions:
        values = resource.get(ext.schema.id)
        if values:
            _check_required_in(ext.schema, values, error)
        elif ext.required:
            raise error(f"Extension {ext.schema.id} is required.")


def _check_required_in(
    schema: Schema, values: Mapping[str, Any], error: type[ScimError]
) -> None:
    for attr in schema.attributes:
        value = values.get(attr.name)
        if value is None or value == "":
            if attr.required and attr.mutability is not Mut.READ_ONLY:
                raise error(f"Attribute '{attr.name}' is required.")
            continue
        if attr.is_complex:
            _check_required_subs(attr, value if attr.multi_valued else [value], error)


def _check_required_subs(attr: Attribute, items: list[Any], error: type[ScimError]) -> None:
    for sub in attr.sub_attributes:
        if sub.required and sub.mutability is not Mut.READ_ONLY:
            for item in items:
                if item.get(sub.name) in (None, ""):
                    raise error(f"Sub-attribute '{attr.name}.{sub.name}' is required.")
