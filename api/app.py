"""The Falcon application: routes under /scim/v2, middleware, media and error handlers.

`create_app` only wires what it is given; building the services is the composition root's job.
"""

from __future__ import annotations

from api.errors import install_error_handlers
from api.media import RESPONSE_CONTENT_TYPE, install_media
from api.middleware import BearerAuthMiddleware, RequestIdMiddleware
from api.resources.discovery import (
    ResourceTypesEndpoint,
    SchemasEndpoint,
    ServiceProviderConfigEndpoint,
)
from api.resources.groups import groups_endpoint
from api.resources.health import LivenessEndpoint, ReadinessEndpoint
from api.resources.search import SearchEndpoint
from api.resources.unsupported import NotImplementedEndpoint
from api.resources.users import users_endpoint
from api.services import API_PREFIX, ApiServices, WsgiApp


def create_app(services: ApiServices) -> WsgiApp:
    # Request ids come first so that even a 401 carries one.
    middleware: list[RequestIdMiddleware | BearerAuthMiddleware] = [
        RequestIdMiddleware(),
        BearerAuthMiddleware(services.tenancy),
    ]
    app = WsgiApp(media_type=RESPONSE_CONTENT_TYPE, middleware=middleware)
    # `/Users/` and `/Users` are one endpoint; a trailing slash is not worth a 404.
    app.req_options.strip_url_path_trailing_slash = True
    install_media(app, services.settings.max_body_bytes)
    install_error_handlers(app)
    _add_scim_routes(app, services)
    app.add_route("/healthz", LivenessEndpoint())
    app.add_route("/readyz", ReadinessEndpoint(services.ready))
    return app


def _add_scim_routes(app: WsgiApp, services: ApiServices) -> None:
    for endpoint in (users_endpoint(services), groups_endpoint(services)):
        path = API_PREFIX + endpoint.resource_type.endpoint
        app.add_route(path, endpoint)
        app.add_route(path + "/{resource_id}", endpoint, suffix="item")
        app.add_route(path + "/.search", SearchEndpoint(services, [endpoint.resource_type]))
    every_type = services.registry.resource_types
    app.add_route(API_PREFIX + "/.search", SearchEndpoint(services, every_type))

    app.add_route(API_PREFIX + "/ServiceProviderConfig", ServiceProviderConfigEndpoint(services))
    resource_types = ResourceTypesEndpoint(services)
    app.add_route(API_PREFIX + "/ResourceTypes", resource_types)
    app.add_route(API_PREFIX + "/ResourceTypes/{name}", resource_types, suffix="item")
    schemas = SchemasEndpoint(services)
    app.add_route(API_PREFIX + "/Schemas", schemas)
    app.add_route(API_PREFIX + "/Schemas/{urn}", schemas, suffix="item")

    app.add_route(API_PREFIX + "/Me", NotImplementedEndpoint("/Me is not supported."))
    # Bulk is advertised as unsupported in /ServiceProviderConfig (Capabilities.bulk).
    app.add_route(API_PREFIX + "/Bulk", NotImplementedEndpoint("Bulk is not supported."))
