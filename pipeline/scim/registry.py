"""The resource-type registry (RFC 7643 §6, §7): which resource types a tenant's service has and
which schemas describe them. Registries are immutable values; a tenant with custom extensions gets
its own, derived from `default_registry()` through `SchemaRegistry.with_extension`, which validates
the extension's §7 document before anything can depend on it.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from scimflow.pipeline.errors import InvalidValue, NotFound
from scimflow.pipeline.scim.schema import (
    AttrType,
    Extension,
    Mutability,
    ResourceType,
    Returned,
    Schema,
    Uniqueness,
    load_builtin_schema,
)

USER: ResourceType = ResourceType(
    name="User",
    endpoint="/Users",
    description="User Account",
    schema=load_builtin_schema("user.json"),
    # Not required (RFC 7643 §6 "schemaExtensions.required"): most IdPs only send the
    # enterprise attributes when they are mapped, and a required extension would reject them.
    extensions=(Extension(load_builtin_schema("enterprise_user.json"), required=False),),
)

GROUP: ResourceType = ResourceType(
    name="Group",
    endpoint="/Groups",
    description="Group",
    schema=load_builtin_schema("group.json"),
)


@dataclass(frozen=True)
class SchemaRegistry:
    """The resource types one SCIM service (one tenant) exposes (RFC 7643 §6)."""

    resource_types: tuple[ResourceType, ...]

    def resource_type(self, name: str) -> ResourceType:
        """The resource type called `name` (e.g. "User"), as in GET /ResourceTypes/User."""
        wanted = name.lower()
        for resource_type in self.resource_types:
            if resource_type.name.lower() == wanted:
                return resource_type
        raise NotFound(f"Resource type '{name}' is not defined.")

    def by_endpoint(self, endpoint: str) -> ResourceType | None:
        """The resource type served at `endpoint` ("/Users"); None when nothing is served there.

        Endpoints are URL path segments, so they compare case-sensitively (RFC 3986 §6.2.2.1).
        """
        wanted = "/" + endpoint.strip("/")
        return next((rt for rt in self.resource_types if rt.endpoint == wanted), None)

    def schemas(self) -> tuple[Schema, ...]:
        """Every distinct schema, core schemas first, in resource-type order (RFC 7644 §4)."""
        cores = [rt.schema for rt in self.resource_types]
        extensions = [schema for rt in self.resource_types for schema in rt.extension_schemas]
        distinct: dict[str, Schema] = {}
        for schema in (*cores, *extensions):
            distinct.setdefault(schema.id.lower(), schema)
        return tuple(distinct.values())

    def schema(self, urn: str) -> Schema:
        """The schema whose id is `urn`, as in GET /Schemas/<urn>; URNs are case-insensitive."""
        wanted = urn.lower()
        for schema in self.schemas():
            if schema.id.lower() == wanted:
                return schema
        raise NotFound(f"Schema '{urn}' is not defined.")

    def with_extension(
        self, resource_type_name: str, schema_doc: Mapping[str, Any], *, required: bool = False
    ) -> SchemaRegistry:
        """A registry where `resource_type_name` also carries the extension `schema_doc`.

        `schema_doc` is a schema in the RFC 7643 §7 representation. It is validated first and
        any defect raises InvalidValue naming the offending attribute; an unknown resource type
        raises NotFound. This registry is left unchanged.
        """
        target = self.resource_type(resource_type_name)
        schema = _validated_extension(schema_doc, self)
        extended = target.with_extensions([Extension(schema, required=required)])
        return SchemaRegistry(tuple(extended if rt is target else rt for rt in self.resource_types))


@cache
def default_registry() -> SchemaRegistry:
    """The built-in registry: User (with the enterprise extension) and Group (RFC 7643 §4)."""
    return SchemaRegistry((USER, GROUP))


# --- Validation of custom extension documents (RFC 7643 §2, §7) ---------------------------

# RFC 7643 §2.1 ATTRNAME, without "$": §2.1's nameChar allows it, but only the RFC's own "$ref"
# uses it, and tenant names are kept to what every IdP mapping UI and path parser accepts.
_ATTRNAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_REF = "$ref"

# An RFC 8141 URN, restricted to characters that need no escaping where SCIM puts the URN: in
# a URL path (GET /Schemas/<urn>, RFC 7644 §4) and as an attribute-path prefix in filters and
# PATCH paths (RFC 7644 §3.10). "/", "?", "#", "%" and sub-delims would break those, so the
# namespace-specific string is limited to unreserved characters and ":".
_URN = re.compile(r"urn:[a-z0-9][a-z0-9-]{0,30}[a-z0-9]:[a-z0-9._~:-]*[a-z0-9._~-]\Z", re.I)

# Namespaces whose schemas are defined by RFC 7643/7644 themselves; a tenant defining a schema
# there would shadow or impersonate a core schema or a protocol message.
_RESERVED_PREFIXES = ("urn:ietf:params:scim:schemas:core:", "urn:ietf:params:scim:api:")

_ATTRIBUTE_KEYS = frozenset(
    {
        "name",
        "type",
        "subAttributes",
        "multiValued",
        "description",
        "required",
        "canonicalValues",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
        "referenceTypes",
    }
)
_BOOLEAN_KEYS = ("multiValued", "required", "caseExact")
_KEYWORD_KEYS: dict[str, type[AttrType | Mutability | Returned | Uniqueness]] = {
    "type": AttrType,
    "mutability": Mutability,
    "returned": Returned,
    "uniqueness": Uniqueness,
}
# §2.3.2 boolean, §2.3.5 dateTime, §2.3.6 binary and §2.3.8 complex "have no uniqueness".
_NO_UNIQUENESS = frozenset({AttrType.BOOLEAN, AttrType.DATETIME, AttrType.BINARY, AttrType.COMPLEX})
# §2.3.2-§2.3.5 and §2.3.8: these types have no case sensitivity.
_NO_CASE = frozenset(
    {
        AttrType.BOOLEAN,
        AttrType.DECIMAL,
        AttrType.INTEGER,
        AttrType.DATETIME,
        AttrType.COMPLEX,
    }
)
# §2.3.1: canonical values suggest values of a string; a reference may suggest URIs.
_CANONICAL_TYPES = frozenset({AttrType.STRING, AttrType.REFERENCE})
# §7 "referenceTypes": a resource type name, "external" or "uri".
_EXTERNAL_REFERENCE_TYPES = ("external", "uri")


_Fail = Callable[[str], InvalidValue]


def _validated_extension(doc: Mapping[str, Any], registry: SchemaRegistry) -> Schema:
    """Check a tenant extension document (RFC 7643 §7) and build its Schema."""
    if not isinstance(doc, Mapping):
        raise InvalidValue("An extension schema must be a JSON object (RFC 7643 §7).")
    urn = _checked_urn(doc.get("id"), registry)
    for key in ("name", "description"):
        if not isinstance(doc.get(key, ""), str):
            raise InvalidValue(f"Extension {urn}: '{key}' must be a string.")
    targets = (*(rt.name for rt in registry.resource_types), *_EXTERNAL_REFERENCE_TYPES)
    checker = _ExtensionChecker(urn, frozenset(name.lower() for name in targets))
    checker.check_list(doc.get("attributes"), parent=None)
    return Schema.from_dict(doc)


def _checked_urn(urn: Any, registry: SchemaRegistry) -> str:
    """The extension id must be a fresh, usable URN (RFC 7643 §7 "id", RFC 8141)."""
    if not isinstance(urn, str) or not _URN.match(urn):
        raise InvalidValue(
            "Extension schema 'id' must be a URN such as 'urn:example:scim:hr:1.0:User', "
            f"got {urn!r}."
        )
    lowered = urn.lower()
    if lowered.startswith(_RESERVED_PREFIXES):
        raise InvalidValue(f"Extension {urn}: this namespace is reserved for SCIM core schemas.")
    if any(schema.id.lower() == lowered for schema in registry.schemas()):
        raise InvalidValue(f"Extension {urn}: a schema with this id already exists.")
    return urn


@dataclass(frozen=True)
class _ExtensionChecker:
    """Checks the attribute definitions of one extension; every failure names its attribute."""

    urn: str
    reference_types: frozenset[str]  # lower-cased values allowed in "referenceTypes"

    def check_list(self, docs: Any, parent: str | None) -> None:
        """A non-empty list of definitions with case-insensitively unique names (§2.1)."""
        where = f"attribute '{parent}' subAttributes" if parent else "attributes"
        if not isinstance(docs, list) or not docs:
            raise InvalidValue(f"Extension {self.urn}: '{where}' must be a non-empty array.")
        seen: set[str] = set()
        for index, doc in enumerate(docs):
            name = self.check_attribute(doc, parent, f"{where}[{index}]")
            if name.lower() in seen:
                raise InvalidValue(
                    f"Extension {self.urn}: duplicate attribute name '{_path(parent, name)}' "
                    "(attribute names are case-insensitive, RFC 7643 §2.1)."
                )
            seen.add(name.lower())

    def check_attribute(self, doc: Any, parent: str | None, position: str) -> str:
        """Check one attribute definition (RFC 7643 §7) and return its name."""
        if not isinstance(doc, Mapping):
            raise InvalidValue(f"Extension {self.urn}: {position} must be a JSON object.")
        name = self._checked_name(doc.get("name"), parent, position)
        fail = self._failer(_path(parent, name))
        unknown = sorted(str(key) for key in set(doc) - _ATTRIBUTE_KEYS)
        if unknown:
            # A misspelt characteristic ("multivalued") would silently fall back to its default.
            raise fail(f"has unknown characteristics {unknown}.")
        attr_type = _checked_characteristics(doc, fail)
        _check_type_rules(doc, attr_type, name, fail)
        _check_canonical_values(doc, attr_type, fail)
        self._check_reference_types(doc, attr_type, fail)
        self._check_sub_attributes(doc, attr_type, parent, name, fail)
        return name

    def _failer(self, path: str) -> _Fail:
        def fail(problem: str) -> InvalidValue:
            return InvalidValue(f"Extension {self.urn}: attribute '{path}' {problem}")

        return fail

    def _checked_name(self, name: Any, parent: str | None, position: str) -> str:
        """ATTRNAME (RFC 7643 §2.1); "$ref" only as a sub-attribute, where §2.4 defines it."""
        if isinstance(name, str) and (_ATTRNAME.match(name) or (parent and name == _REF)):
            return name
        raise InvalidValue(
            f"Extension {self.urn}: {position} has invalid name {name!r}; a name is a letter "
            "followed by letters, digits, '-' or '_' (RFC 7643 §2.1)"
            + ("." if parent else ", and '$ref' is only valid as a sub-attribute.")
        )

    def _check_reference_types(
        self, doc: Mapping[str, Any], attr_type: AttrType, fail: _Fail
    ) -> None:
        """referenceTypes exist exactly on references and name known targets (§2.3.7, §7)."""
        if attr_type is not AttrType.REFERENCE:
            if "referenceTypes" in doc:
                raise fail("has referenceTypes but is not of type reference (RFC 7643 §7).")
            return
        if not doc.get("referenceTypes"):
            raise fail("is a reference and needs non-empty referenceTypes (RFC 7643 §2.3.7).")
        refs = _checked_strings(doc["referenceTypes"], "referenceTypes", fail)
        unknown = [ref for ref in refs if ref.lower() not in self.reference_types]
        if unknown:
            raise fail(
                f"has unknown referenceTypes {unknown}; use a resource type name, 'external' "
                "or 'uri' (RFC 7643 §7)."
            )

    def _check_sub_attributes(
        self,
        doc: Mapping[str, Any],
        attr_type: AttrType,
        parent: str | None,
        name: str,
        fail: _Fail,
    ) -> None:
        """Only complex attributes have sub-attributes, and those are never complex (§2.3.8)."""
        if attr_type is not AttrType.COMPLEX:
            if "subAttributes" in doc:
                raise fail(f"of type {attr_type.value} cannot have subAttributes (RFC 7643 §7).")
            return
        if parent is not None:
            raise fail("is complex, but a sub-attribute cannot be complex (RFC 7643 §2.3.8).")
        # A complex attribute without sub-attributes could hold anything and be checked against
        # nothing, so §7's "SHOULD" list its sub-attributes is enforced.
        self.check_list(doc.get("subAttributes"), parent=name)


def _checked_characteristics(doc: Mapping[str, Any], fail: _Fail) -> AttrType:
    """JSON types and keyword values of the characteristics (RFC 7643 §7)."""
    if "type" not in doc:
        raise fail("has no 'type'.")
    for key, keywords in _KEYWORD_KEYS.items():
        allowed = [member.value for member in keywords]
        if key in doc and doc[key] not in allowed:
            raise fail(f"has invalid {key} {doc[key]!r}; expected one of: {', '.join(allowed)}.")
    for key in _BOOLEAN_KEYS:
        if key in doc and not isinstance(doc[key], bool):
            raise fail(f"has non-boolean {key} {doc[key]!r}.")
    if not isinstance(doc.get("description", ""), str):
        raise fail("has a non-string description.")
    return AttrType(doc["type"])


def _check_type_rules(doc: Mapping[str, Any], attr_type: AttrType, name: str, fail: _Fail) -> None:
    """Characteristics that contradict the data type or each other (RFC 7643 §2.3, §2.4, §7)."""
    if attr_type in _NO_UNIQUENESS and doc.get("uniqueness", "none") != Uniqueness.NONE:
        raise fail(f"of type {attr_type.value} cannot have uniqueness (RFC 7643 §2.3).")
    if attr_type in _NO_CASE and doc.get("caseExact") is True:
        raise fail(f"of type {attr_type.value} cannot be caseExact (RFC 7643 §2.3).")
    if name == _REF and attr_type is not AttrType.REFERENCE:
        raise fail("must be of type reference: '$ref' is a reference URI (RFC 7643 §2.4).")
    mutability = doc.get("mutability", Mutability.READ_WRITE)
    if mutability == Mutability.WRITE_ONLY and doc.get("returned") != Returned.NEVER:
        raise fail("is writeOnly and so must have returned 'never' (RFC 7643 §7).")
    if mutability == Mutability.READ_ONLY and doc.get("required") is True:
        # Nothing computes a tenant attribute server-side, so no request could satisfy it.
        raise fail("cannot be both required and readOnly: no client could ever set it.")


def _check_canonical_values(doc: Mapping[str, Any], attr_type: AttrType, fail: _Fail) -> None:
    """canonicalValues suggest values of a string or reference (RFC 7643 §2.3.1, §7)."""
    if "canonicalValues" not in doc:
        return
    _checked_strings(doc["canonicalValues"], "canonicalValues", fail)
    if attr_type not in _CANONICAL_TYPES:
        raise fail(f"of type {attr_type.value} cannot have canonicalValues.")


def _checked_strings(values: Any, key: str, fail: _Fail) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise fail(f"has invalid {key}: expected an array of non-empty strings.")
    if len({v.lower() for v in values}) != len(values):
        raise fail(f"has duplicate {key}.")
    return values


def _path(parent: str | None, name: str) -> str:
    return f"{parent}.{name}" if parent else name
