"""The discovery endpoints (RFC 7644 §4), generated from the registry and the capabilities.

They require the bearer token like everything else: RFC 7644 §4 lets them be open, but the
schemas are the tenant's (custom extensions are per tenant), Okta and Entra send the token
anyway, and an open endpoint would tell anyone which service answers here.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import falcon

from scimflow.api.middleware import tenant_of
from scimflow.api.services import ApiServices
from scimflow.pipeline.errors import Forbidden
from scimflow.pipeline.scim.discovery import (
    resource_type_doc,
    resource_types_list,
    schema_doc,
    schemas_list,
    service_provider_config,
)


def refuse_filter(req: falcon.Request) -> None:
    """RFC 7644 §4: a filter on discovery SHOULD be refused, lest a client trust its result."""
    if req.get_param("filter") is not None:
        raise Forbidden("Discovery endpoints do not support filtering (RFC 7644 §4).")


class ServiceProviderConfigEndpoint:
    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        refuse_filter(req)
        resp.media = service_provider_config(self._services.capabilities, self._services.base_url)


class ResourceTypesEndpoint:
    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        refuse_filter(req)
        resp.media = resource_types_list(
            self._services.registry_for(tenant_of(req)), self._services.base_url
        )

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = resource_type_doc(
            self._services.registry_for(tenant_of(req)), name, self._services.base_url
        )


class SchemasEndpoint:
    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        refuse_filter(req)
        resp.media = schemas_list(
            self._services.registry_for(tenant_of(req)), self._services.base_url
        )

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, urn: str) -> None:
        resp.media = schema_doc(
            self._services.registry_for(tenant_of(req)), urn, self._services.base_url
        )
