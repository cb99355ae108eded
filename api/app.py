"""The Falcon application: routes under /scim/v2, middleware, media and error handlers.

`create_app` only wires what it is given; building the services is the composition root's job.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from scimflow.api.errors import install_error_handlers
from scimflow.api.media import RESPONSE_CONTENT_TYPE, install_media
from scimflow.api.metrics import METRICS_PATH, MetricsEndpoint, MetricsMiddleware, scrape_registry
from scimflow.api.middleware import (
    AcceptMiddleware,
    AppKeyAuthMiddleware,
    BearerAuthMiddleware,
    ConnectionReuseMiddleware,
    RequestIdMiddleware,
)
from scimflow.api.observation import TrafficObservationMiddleware
from scimflow.api.resources.application import add_application_routes
from scimflow.api.resources.discovery import (
    ResourceTypesEndpoint,
    SchemasEndpoint,
    ServiceProviderConfigEndpoint,
)
from scimflow.api.resources.events import (
    EVENTS_PATH,
    JWKS_PATH,
    POLL_PATH,
    EventsEndpoint,
    JwksEndpoint,
    PollEndpoint,
    handle_feed_error,
)
from scimflow.api.resources.groups import groups_endpoint
from scimflow.api.resources.health import LivenessEndpoint, ReadinessEndpoint
from scimflow.api.resources.search import SearchEndpoint
from scimflow.api.resources.unsupported import NotImplementedEndpoint
from scimflow.api.resources.users import users_endpoint
from scimflow.api.services import API_PREFIX, ApiServices, WsgiApp
from scimflow.pipeline.services.auth_throttle import AuthFailureThrottle
from scimflow.pipeline.services.events_feed import FeedError

Middleware = (
    MetricsMiddleware | RequestIdMiddleware | AcceptMiddleware | BearerAuthMiddleware
    | AppKeyAuthMiddleware | ConnectionReuseMiddleware | TrafficObservationMiddleware
)


def create_app(services: ApiServices, metrics: CollectorRegistry | None = None) -> WsgiApp:
    """The app; `metrics` is what /metrics serves (default: the processes' request figures,
    without the database's backlog)."""
    app = WsgiApp(media_type=RESPONSE_CONTENT_TYPE, middleware=_middleware(services))
    # `/Users/` and `/Users` are one endpoint; a trailing slash is not worth a 404.
    app.req_options.strip_url_path_trailing_slash = True
    install_media(app, services.settings.max_body_bytes)
    install_error_handlers(app)
    _add_scim_routes(app, services)
    _add_event_routes(app, services)
    if services.application is not None:
        add_application_routes(app, services.application, services.settings.max_body_bytes)
    _route(app, "/healthz", LivenessEndpoint())
    _route(app, "/readyz", ReadinessEndpoint(services.ready))
    _route(app, METRICS_PATH, MetricsEndpoint(metrics or scrape_registry()))
    return app


def _middleware(services: ApiServices) -> list[Middleware]:
    settings = services.settings
    throttle = AuthFailureThrottle(settings.auth_failure_limit,
                                   settings.auth_failure_window_seconds)
    # Metrics first: its response hook runs last, with the final status. Request ids next so
    # that even a 401 carries one; a 406 costs no token check.
    middleware: list[Middleware] = [
        MetricsMiddleware(),
        RequestIdMiddleware(),
        ConnectionReuseMiddleware(),
        AcceptMiddleware(),
        BearerAuthMiddleware(services.tenancy, throttle),
    ]
    if services.events is not None:
        middleware.append(AppKeyAuthMiddleware(services.events.app_keys, throttle))
    if services.traffic is not None:
        middleware.append(TrafficObservationMiddleware(services.traffic))
    return middleware


def _route(app: WsgiApp, path: str, resource: object, *, suffix: str | None = None) -> None:
    """Add a route that answers HEAD wherever it answers GET (RFC 9110 §9.3.2).

    HEAD runs the GET responder: same status and headers; Falcon sends no body and keeps the
    Content-Length the GET body has.
    """
    tail = f"_{suffix}" if suffix else ""
    get = getattr(resource, f"on_get{tail}", None)
    if get is not None and getattr(resource, f"on_head{tail}", None) is None:
        setattr(resource, f"on_head{tail}", get)
    app.add_route(path, resource, suffix=suffix)


def _add_event_routes(app: WsgiApp, services: ApiServices) -> None:
    """The events API, outside the SCIM base: application keys, not tenants, read it."""
    events = services.events
    if events is None:
        return
    app.add_error_handler(FeedError, handle_feed_error)
    _route(app, EVENTS_PATH, EventsEndpoint(events))
    app.add_route(POLL_PATH, PollEndpoint(events, services.settings.max_body_bytes))
    _route(app, JWKS_PATH, JwksEndpoint(events))


def _add_scim_routes(app: WsgiApp, services: ApiServices) -> None:
    for endpoint in (users_endpoint(services), groups_endpoint(services)):
        path = API_PREFIX + endpoint.resource_type.endpoint
        _route(app, path, endpoint)
        _route(app, path + "/{resource_id}", endpoint, suffix="item")
        _route(app, path + "/.search", SearchEndpoint(services, [endpoint.resource_type]))
    every_type = services.registry.resource_types
    _route(app, API_PREFIX + "/.search", SearchEndpoint(services, every_type))

    _route(app, API_PREFIX + "/ServiceProviderConfig", ServiceProviderConfigEndpoint(services))
    resource_types = ResourceTypesEndpoint(services)
    _route(app, API_PREFIX + "/ResourceTypes", resource_types)
    _route(app, API_PREFIX + "/ResourceTypes/{name}", resource_types, suffix="item")
    schemas = SchemasEndpoint(services)
    _route(app, API_PREFIX + "/Schemas", schemas)
    _route(app, API_PREFIX + "/Schemas/{urn}", schemas, suffix="item")

    _route(app, API_PREFIX + "/Me", NotImplementedEndpoint("/Me is not supported."))
    # Bulk is advertised as unsupported in /ServiceProviderConfig (Capabilities.bulk).
    _route(app, API_PREFIX + "/Bulk", NotImplementedEndpoint("Bulk is not supported."))
