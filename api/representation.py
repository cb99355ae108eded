"""Acknowledged and found resources as SCIM JSON, with `meta`, `Location` and `ETag` built from the
acknowledged row.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import falcon

from scimflow.pipeline.commands import MEMBERS
from scimflow.pipeline.scim.meta import scim_datetime
from scimflow.pipeline.scim.render import Meta, Projection, list_response, render_resource
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.services.reads import Found, SearchPage
from scimflow.pipeline.services.writes import WriteReceipt
from scimflow.pipeline.store.acknowledged import AcknowledgedResource


class Representer:
    """Renders resources whose `meta.location` is absolute under `base_url` (RFC 7643 §3.1)."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url

    def location(self, resource_type: ResourceType, resource_id: str) -> str:
        return f"{self._base_url}{resource_type.endpoint}/{quote(resource_id, safe='')}"

    def meta(self, resource: AcknowledgedResource, resource_type: ResourceType) -> Meta:
        return Meta(
            resource_type=resource_type.name,
            created=scim_datetime(resource.created_at),
            last_modified=scim_datetime(resource.updated_at),
            location=self.location(resource_type, resource.id),
            version=resource.version,
        )

    def found(
        self, found: Found, resource_type: ResourceType, projection: Projection
    ) -> dict[str, Any]:
        return self._render(found.data(), found.resource, resource_type, projection)

    def receipt(
        self, receipt: WriteReceipt, resource_type: ResourceType, projection: Projection
    ) -> dict[str, Any]:
        data = dict(receipt.resource.data)
        if receipt.members:
            data[MEMBERS] = receipt.members
        return self._render(data, receipt.resource, resource_type, projection)

    def page(
        self, page: SearchPage, resource_type: ResourceType, projection: Projection
    ) -> dict[str, Any]:
        return list_response(
            (self.found(found, resource_type, projection) for found in page.items),
            total_results=page.total_results,
            start_index=page.start_index,
        )

    def _render(
        self,
        data: dict[str, Any],
        resource: AcknowledgedResource,
        resource_type: ResourceType,
        projection: Projection,
    ) -> dict[str, Any]:
        meta = self.meta(resource, resource_type)
        return render_resource(
            self._with_refs(data), resource_type, resource_id=resource.id, meta=meta,
            projection=projection,
        )

    def _with_refs(self, data: dict[str, Any]) -> dict[str, Any]:
        """`$ref` of members and of a user's groups: the absolute URI of the referenced
        resource (RFC 7643 §4.1.2, §4.2), built here because only the API knows its URL."""
        out = dict(data)
        for attribute in (MEMBERS, "groups"):
            if out.get(attribute):
                out[attribute] = [self._referenced(value, attribute) for value in out[attribute]]
        return out

    def _referenced(self, value: dict[str, Any], attribute: str) -> dict[str, Any]:
        if "value" not in value or value.get("$ref"):
            return value
        kind = value.get("type") if attribute == MEMBERS else "Group"
        endpoint = {"User": "/Users", "Group": "/Groups"}.get(str(kind))
        if endpoint is None:
            return value
        return {**value, "$ref": f"{self._base_url}{endpoint}/{quote(value['value'], safe='')}"}


def send_resource(
    resp: falcon.Response,
    body: dict[str, Any],
    meta: Meta,
    *,
    status: int = 200,
) -> None:
    """A single resource, with its `ETag` (RFC 7644 §3.14) and `Location` (§3.1)."""
    resp.status = status
    resp.media = body
    resp.set_header("ETag", meta.etag)
    resp.set_header("Location", meta.location)
