"""`/{endpoint}` and `/{endpoint}/{id}` of one resource type (RFC 7644 §3.3 to §3.6).

Users and Groups differ only in their type name and in what a PATCH answers, so one class
serves both; `users.py` and `groups.py` declare the two instances.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from typing import Any

import falcon

from scimflow.api.media import read_json
from scimflow.api.middleware import request_id_of, tenant_of
from scimflow.api.query import has_projection, projection, renders_memberships, search_from_params
from scimflow.api.representation import Representer, send_resource
from scimflow.api.services import ApiServices
from scimflow.pipeline.scim.meta import names_version
from scimflow.pipeline.scim.render import Projection
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.services.writes import WriteReceipt


class ResourceEndpoint:
    """Collection responders (`on_get`, `on_post`) and item responders (suffix `item`)."""

    def __init__(
        self, services: ApiServices, type_name: str, *, patch_returns_resource: bool
    ) -> None:
        self.resource_type = services.registry.resource_type(type_name)
        self._services = services
        self._render = Representer(services.base_url)
        self._patch_returns_resource = patch_returns_resource

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Query (RFC 7644 §3.4.2): a ListResponse, empty when nothing matches."""
        search = search_from_params(req, self._services.settings.filter_max_results)
        query, shown = search.for_type(self._type(req))
        page = self._services.reads.search(tenant_of(req), self.resource_type.name, query)
        resp.media = self._render.page(page, self._type(req), shown)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create (§3.3): 201 with the resource, also for a replay of the same POST.

        A replay (`WriteReceipt.created` is False) means the IdP's earlier attempt did create the
        resource and the IdP never saw the answer; 201 with the original lets it record that
        create as done, where a 409 would stop Okta's job and send Entra into a re-match.
        """
        receipt = self._services.writes.create(
            tenant_of(req), self.resource_type.name, self._body(req), request_id=request_id_of(req)
        )
        self._send(req, resp, receipt, status=201)

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, resource_id: str) -> None:
        """Retrieve (§3.4.1); memberships are loaded only when they will be rendered."""
        shown = projection(req, self._type(req))
        found = self._services.reads.get(
            tenant_of(req),
            self.resource_type.name,
            resource_id,
            with_memberships=renders_memberships(shown, self._type(req)),
        )
        meta = self._render.meta(found.resource, self._type(req))
        if_none_match = req.get_header("If-None-Match")
        if if_none_match and names_version(if_none_match, meta.version):
            resp.status = falcon.HTTP_304  # RFC 7644 §3.14: the client's copy is current
            resp.set_header("ETag", meta.etag)
            return
        send_resource(resp, self._render.found(found, self._type(req), shown), meta)

    def on_put_item(self, req: falcon.Request, resp: falcon.Response, resource_id: str) -> None:
        """Replace (§3.5.1): 200 with the resource."""
        receipt = self._services.writes.replace(
            tenant_of(req),
            self.resource_type.name,
            resource_id,
            self._body(req),
            if_match=req.get_header("If-Match"),
            request_id=request_id_of(req),
        )
        self._send(req, resp, receipt)

    def on_patch_item(self, req: falcon.Request, resp: falcon.Response, resource_id: str) -> None:
        """Modify (§3.5.2): 200 with the resource, or 204 where the type's IdPs expect it."""
        receipt = self._services.writes.patch(
            tenant_of(req),
            self.resource_type.name,
            resource_id,
            self._body(req),
            if_match=req.get_header("If-Match"),
            request_id=request_id_of(req),
        )
        if self._patch_returns_resource or has_projection(req):
            # Read back, so the body is the entire resource with every acknowledged change,
            # memberships included (RFC 7644 §3.5.2: a 200 carries the resource).
            self.on_get_item(req, resp, resource_id)
        else:
            resp.status = falcon.HTTP_204
            resp.set_header("ETag", self._render.meta(receipt.resource, self._type(req)).etag)

    def on_delete_item(self, req: falcon.Request, resp: falcon.Response, resource_id: str) -> None:
        """Delete (§3.6): 204."""
        self._services.writes.delete(
            tenant_of(req),
            self.resource_type.name,
            resource_id,
            if_match=req.get_header("If-Match"),
            request_id=request_id_of(req),
        )
        resp.status = falcon.HTTP_204

    def _type(self, req: falcon.Request) -> ResourceType:
        """This endpoint's resource type as the requesting tenant declared it (its extensions)."""
        return self._services.resource_type_for(tenant_of(req), self.resource_type.name)

    def _body(self, req: falcon.Request) -> Any:
        return read_json(req, self._services.settings.max_body_bytes)

    def _send(
        self, req: falcon.Request, resp: falcon.Response, receipt: WriteReceipt, *,
        status: int = 200,
    ) -> None:
        shown: Projection = projection(req, self._type(req))
        body = self._render.receipt(receipt, self._type(req), shown)
        meta = self._render.meta(receipt.resource, self._type(req))
        send_resource(resp, body, meta, status=status)
