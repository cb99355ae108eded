"""Schemas and resource types as data (RFC 7643 §2, §6, §7), the built-in ones loaded from the §8.7
representations in `schemas/*.json`.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

from scimflow.pipeline.errors import InvalidValue

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class AttrType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATETIME = "dateTime"
    BINARY = "binary"
    REFERENCE = "reference"
    COMPLEX = "complex"


class Mutability(StrEnum):
    READ_ONLY = "readOnly"
    READ_WRITE = "readWrite"
    IMMUTABLE = "immutable"
    WRITE_ONLY = "writeOnly"


class Returned(StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    DEFAULT = "default"
    REQUEST = "request"


class Uniqueness(StrEnum):
    NONE = "none"
    SERVER = "server"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute definition with every RFC 7643 §2.2 characteristic."""

    name: str
    type: AttrType
    multi_valued: bool = False
    description: str = ""
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = Mutability.READ_WRITE
    returned: Returned = Returned.DEFAULT
    uniqueness: Uniqueness = Uniqueness.NONE
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    _by_lower_name: dict[str, Attribute] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for sub in self.sub_attributes:
            self._by_lower_name[sub.name.lower()] = sub

    def sub(self, name: str) -> Attribute | None:
        """Find a sub-attribute by name; attribute names are case-insensitive (§2.1)."""
        return self._by_lower_name.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type is AttrType.COMPLEX

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attribute:
        """Build from the RFC 7643 §7 attribute representation."""
        try:
            return cls(
                name=data["name"],
                type=AttrType(data["type"]),
                multi_valued=bool(data.get("multiValued", False)),
                description=data.get("description", ""),
                required=bool(data.get("required", False)),
                case_exact=bool(data.get("caseExact", False)),
                mutability=Mutability(data.get("mutability", "readWrite")),
                returned=Returned(data.get("returned", "default")),
                uniqueness=Uniqueness(data.get("uniqueness", "none")),
                canonical_values=tuple(data.get("canonicalValues", ())),
                reference_types=tuple(data.get("referenceTypes", ())),
                sub_attributes=tuple(
                    cls.from_dict(sub) for sub in data.get("subAttributes", ())
                ),
            )
        except (KeyError, ValueError, TypeError) as ex:
            raise InvalidValue(f"Invalid attribute definition {data!r}: {ex}") from ex

    def to_dict(self) -> dict[str, Any]:
        """Render the RFC 7643 §7 attribute representation."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
        }
        if self.type in (AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY):
            out["caseExact"] = self.case_exact
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        out["mutability"] = self.mutability.value
        out["returned"] = self.returned.value
        out["uniqueness"] = self.uniqueness.value
        if self.sub_attributes:
            out["subAttributes"] = [sub.to_dict() for sub in self.sub_attributes]
        return out


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema definition (RFC 7643 §7): a URN and its top-level attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _by_lower_name: dict[str, Attribute] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for attr in self.attributes:
            self._by_lower_name[attr.name.lower()] = attr

    def attribute(self, name: str) -> Attribute | None:
        return self._by_lower_name.get(name.lower())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        try:
            schema_id = data["id"]
            attributes = data["attributes"]
        except (KeyError, TypeError) as ex:
            raise InvalidValue(f"A schema needs 'id' and 'attributes': {ex}") from ex
        if not isinstance(schema_id, str) or not schema_id.startswith("urn:"):
            raise InvalidValue(f"Schema id must be a URN, got {schema_id!r}")
        return cls(
            id=schema_id,
            name=data.get("name", ""),
            description=data.get("description", ""),
            attributes=tuple(Attribute.from_dict(attr) for attr in attributes),
        )

    def to_dict(self, location: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [attr.to_dict() for attr in self.attributes],
            "meta": {"resourceType": "Schema"},
        }
        if location:
            out["meta"]["location"] = location
        return out


@dataclass(frozen=True, slots=True)
class Extension:
    schema: Schema
    required: bool = False


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 §6): its endpoint, core schema and schema extensions."""

    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[Extension, ...] = ()
    _by_lower_urn: dict[str, Schema] = field(default_factory=dict, compare=False, repr=False)
    # Derived, immutable results (resolved PATCH paths...) memoised per resource type; bounded
    # by the users of `memoised`, so hostile input cannot grow it without limit.
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_lower_urn[self.schema.id.lower()] = self.schema
        for ext in self.extensions:
            self._by_lower_urn[ext.schema.id.lower()] = ext.schema

    def schema_for(self, urn: str) -> Schema | None:
        """Find the core schema or an extension by URN (URNs compare case-insensitively)."""
        return self._by_lower_urn.get(urn.lower())

    def memoised(self, key: Any, compute: Callable[[], Any], limit: int = 4096) -> Any:
        """Return `compute()` for `key`, remembering up to `limit` results."""
        found = self._memo.get(key)
        if found is None:
            found = compute()
            if len(self._memo) < limit:
                self._memo[key] = found
        return found

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema.id, *(ext.schema.id for ext in self.extensions))

    @property
    def extension_schemas(self) -> tuple[Schema, ...]:
        return tuple(ext.schema for ext in self.extensions)

    def with_extensions(self, extra: Iterable[Extension]) -> ResourceType:
        return ResourceType(
            self.name, self.endpoint, self.description, self.schema, (*self.extensions, *extra)
        )

    def to_dict(self, location: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": ext.schema.id, "required": ext.required} for ext in self.extensions
            ],
            "meta": {"resourceType": "ResourceType"},
        }
        if location:
            out["meta"]["location"] = location
        return out


# Common attributes (RFC 7643 §3.1) belong to every resource but to no schema document.
COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "id", AttrType.STRING, case_exact=True, mutability=Mutability.READ_ONLY,
        returned=Returned.ALWAYS, uniqueness=Uniqueness.SERVER,
        description="Unique identifier of the resource, issued by the service provider.",
    ),
    Attribute(
        "externalId", AttrType.STRING, case_exact=True,
        description="Identifier of the resource as defined by the provisioning client.",
    ),
    Attribute(
        "meta", AttrType.COMPLEX, mutability=Mutability.READ_ONLY,
        description="Resource metadata.",
        sub_attributes=(
            Attribute("resourceType", AttrType.STRING, case_exact=True,
                      mutability=Mutability.READ_ONLY),
            Attribute("created", AttrType.DATETIME, mutability=Mutability.READ_ONLY),
            Attribute("lastModified", AttrType.DATETIME, mutability=Mutability.READ_ONLY),
            Attribute("location", AttrType.REFERENCE, case_exact=True,
                      mutability=Mutability.READ_ONLY, reference_types=("uri",)),
            Attribute("version", AttrType.STRING, case_exact=True,
                      mutability=Mutability.READ_ONLY),
        ),
    ),
)
COMMON_BY_LOWER_NAME: dict[str, Attribute] = {a.name.lower(): a for a in COMMON_ATTRIBUTES}


def load_builtin_schema(file_name: str) -> Schema:
    """Load one of the RFC 7643 §8.7 schema documents shipped in `schemas/`."""
    text = (resources.files("scimflow.pipeline.scim") / "schemas" / file_name).read_text("utf-8")
    return Schema.from_dict(json.loads(text))
