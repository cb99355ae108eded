"""POST `…/.search` (RFC 7644 §3.4.3): a query whose parameters travel in the body.

At the root (`/.search`) the query spans every resource type, as RFC 7644 §3.4.2.1 requires
("all resources within the server SHALL be included, subject to filtering"): Users first, then
Groups, paged over the concatenation. A filter naming an attribute one type lacks matches
nothing of that type; only a filter no type understands is 400 invalidFilter.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import falcon

from scimflow.api.media import read_json
from scimflow.api.middleware import tenant_of
from scimflow.api.query import SearchRequest, search_from_body
from scimflow.api.representation import Representer
from scimflow.api.services import ApiServices
from scimflow.pipeline.errors import InvalidFilter
from scimflow.pipeline.scim.render import list_response
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.store.tenants import TenantRef


class SearchEndpoint:
    def __init__(self, services: ApiServices, resource_types: Sequence[ResourceType]) -> None:
        self._services = services
        self._types = tuple(resource_types)
        self._render = Representer(services.base_url)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        settings = self._services.settings
        body = read_json(req, settings.max_body_bytes)
        search = search_from_body(body, settings.filter_max_results)
        tenant = tenant_of(req)
        if len(self._types) == 1:
            resource_type = self._services.resource_type_for(tenant, self._types[0].name)
            resp.media = self._search_one(tenant, resource_type, search)
        else:
            resp.media = self._search_all(tenant, search)

    def _search_one(
        self, tenant: TenantRef, resource_type: ResourceType, search: SearchRequest
    ) -> dict[str, Any]:
        query, shown = search.for_type(resource_type)
        page = self._services.reads.search(tenant, resource_type.name, query)
        return self._render.page(page, resource_type, shown)

    def _search_all(self, tenant: TenantRef, search: SearchRequest) -> dict[str, Any]:
        """One page over the concatenated results of every type, in registry order."""
        budget = search.count
        if budget is None:
            budget = self._services.settings.filter_max_results
        resources: list[dict[str, Any]] = []
        total = 0  # results of the types searched so far; the next type's results follow them
        refused: list[InvalidFilter] = []
        for base_type in self._types:
            resource_type = self._services.resource_type_for(tenant, base_type.name)
            query, shown = search.for_type(resource_type)
            # A type's own startIndex is the page start shifted past the earlier types; a count
            # of 0 still reports the type's total (RFC 7644 §3.4.2.4).
            query = replace(
                query,
                start_index=max(1, search.start_index - total),
                count=budget - len(resources),
            )
            try:
                page = self._services.reads.search(tenant, resource_type.name, query)
            except InvalidFilter as ex:
                refused.append(ex)
                continue
            resources += (self._render.found(f, resource_type, shown) for f in page.items)
            total += page.total_results
        if len(refused) == len(self._types):
            raise refused[0]
        return list_response(resources, total_results=total, start_index=search.start_index)
