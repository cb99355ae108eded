"""Rendering canonical resources as SCIM JSON (RFC 7643 §3, RFC 7644 §3.4.2, §3.9): `schemas`, `id`,
`meta`, the `returned` characteristic and the `attributes` / `excludedAttributes` projection.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scimflow.pipeline.scim.meta import weak_etag
from scimflow.pipeline.scim.schema import (
    COMMON_BY_LOWER_NAME,
    Attribute,
    ResourceType,
    Returned,
    Schema,
)

LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# A projected name: (schema id or "" for core/common attributes, attribute, sub-attribute).
Selector = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class Meta:
    """Resource metadata (RFC 7643 §3.1); `version` is rendered as a weak ETag."""

    resource_type: str
    created: str
    last_modified: str
    location: str
    version: int

    @property
    def etag(self) -> str:
        return weak_etag(self.version)

    def to_json(self) -> dict[str, Any]:
        return {
            "resourceType": self.resource_type,
            "created": self.created,
            "lastModified": self.last_modified,
            "location": self.location,
            "version": self.etag,
        }


@dataclass(frozen=True, slots=True)
class Projection:
    """The `attributes` / `excludedAttributes` request parameters, resolved (RFC 7644 §3.9)."""

    include: frozenset[Selector] | None = None
    exclude: frozenset[Selector] = frozenset()

    @classmethod
    def parse(
        cls,
        resource_type: ResourceType,
        attributes: str | Sequence[str] | None = None,
        excluded: str | Sequence[str] | None = None,
    ) -> Projection:
        """Resolve comma-separated attribute names; names the schema lacks select nothing."""
        include = _selectors(resource_type, attributes) if attributes else None
        return cls(include, _selectors(resource_type, excluded) if excluded else frozenset())

    def wants(self, attr: Attribute, schema_key: str, sub: Attribute | None = None) -> bool:
        """Whether an attribute, or one sub-attribute of it, is rendered."""
        shown = sub or attr
        if shown.returned is Returned.NEVER:
            return False
        if attr.returned is Returned.ALWAYS or shown.returned is Returned.ALWAYS:
            return True
        whole: Selector = (schema_key, attr.name.lower(), None)
        part: Selector | None = (schema_key, whole[1], sub.name.lower()) if sub else None
        if self.include is not None:
            if part is not None:
                return part in self.include or (
                    whole in self.include and shown.returned is not Returned.REQUEST
                )
            return whole in self.include or any(s[:2] == whole[:2] for s in self.include)
        if shown.returned is Returned.REQUEST:
            return False
        return whole not in self.exclude and part not in self.exclude


DEFAULT_PROJECTION = Projection()


def _selectors(resource_type: ResourceType, names: str | Sequence[str]) -> frozenset[Selector]:
    parts = names.split(",") if isinstance(names, str) else names
    out: set[Selector] = set()
    for raw in parts:
        selector = _selector(resource_type, raw.strip())
        if selector is not None:
            out.add(selector)
    return frozenset(out)


def _selector(resource_type: ResourceType, text: str) -> Selector | None:
    schema, rest = resource_type.schema, text
    for candidate in resource_type.schema_ids:
        if text.lower().startswith(candidate.lower() + ":"):
            found = resource_type.schema_for(candidate)
            schema, rest = (found or schema), text[len(candidate) + 1:]
            break
    name, _, sub = rest.partition(".")
    if not name:
        return None
    key = "" if schema is resource_type.schema else schema.id
    return (key, name.lower(), sub.lower() or None)


def render_resource(
    resource: Mapping[str, Any],
    resource_type: ResourceType,
    *,
    resource_id: str,
    meta: Meta | None,
    projection: Projection = DEFAULT_PROJECTION,
) -> dict[str, Any]:
    """Render a canonical resource as its SCIM representation (without `meta` when there is
    none to give, as in an event, which names the version itself)."""
    out: dict[str, Any] = {"schemas": _schemas_present(resource, resource_type), "id": resource_id}
    _render_attributes(out, resource, resource_type.schema, "", projection)
    for schema in resource_type.extension_schemas:
        values = resource.get(schema.id)
        if values:
            rendered: dict[str, Any] = {}
            _render_attributes(rendered, values, schema, schema.id, projection)
            if rendered:
                out[schema.id] = rendered
    meta_attr = COMMON_BY_LOWER_NAME["meta"]
    if meta is not None and projection.wants(meta_attr, ""):
        # Projected like any complex attribute, so `attributes=meta.lastModified` and
        # `excludedAttributes=meta.version` select sub-attributes (RFC 7644 §3.9, §3.10).
        rendered_meta = _render_complex(meta_attr, meta.to_json(), "", projection)
        if rendered_meta:
            out["meta"] = rendered_meta
    return out


def _schemas_present(resource: Mapping[str, Any], resource_type: ResourceType) -> list[str]:
    return [resource_type.schema.id] + [
        schema.id for schema in resource_type.extension_schemas if resource.get(schema.id)
    ]


def _render_attributes(
    out: dict[str, Any],
    values: Mapping[str, Any],
    schema: Schema,
    schema_key: str,
    projection: Projection,
) -> None:
    for name, value in values.items():
        attr = schema.attribute(name) or (
            COMMON_BY_LOWER_NAME.get(name.lower()) if not schema_key else None
        )
        if attr is None or name == "id" or not projection.wants(attr, schema_key):
            continue
        rendered = _render_value(attr, value, schema_key, projection)
        if rendered not in (None, [], {}):
            out[attr.name] = rendered


def _render_value(attr: Attribute, value: Any, schema_key: str, projection: Projection) -> Any:
    if not attr.is_complex:
        return value
    if attr.multi_valued:
        items = (_render_complex(attr, item, schema_key, projection) for item in value)
        return [item for item in items if item]
    return _render_complex(attr, value, schema_key, projection)


def _render_complex(
    attr: Attribute, value: Mapping[str, Any], schema_key: str, projection: Projection
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sub_value in value.items():
        sub = attr.sub(name)
        if sub is not None and projection.wants(attr, schema_key, sub):
            out[sub.name] = sub_value
    return out


def list_response(
    resources: Iterable[dict[str, Any]], *, total_results: int, start_index: int
) -> dict[str, Any]:
    """Render a query result page (RFC 7644 §3.4.2); all numbers are integers."""
    page = list(resources)
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "itemsPerPage": len(page),
        "startIndex": start_index,
        "Resources": page,
    }
