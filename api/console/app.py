"""The console's Falcon app: routes under its root, the auth and header middleware, and
error pages (HTML, never a SCIM error body, never a 500 for bad input).

`create_console` only wires what it is given; the composition roots build the services.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import falcon

from scimflow.api.console.auth import ConsoleAuthMiddleware, SecurityHeadersMiddleware
from scimflow.api.console.pages import (
    DeadLetterAction,
    DeadLettersPage,
    DeliveriesPage,
    DirectoryPage,
    HistoryPage,
    LoginPage,
    LogoutAction,
    RootPage,
    TenantsPage,
)
from scimflow.api.console.render import Pages
from scimflow.api.console.services import ConsoleServices
from scimflow.api.services import WsgiApp
from scimflow.pipeline.errors import ScimError

STYLESHEET = "console.css"


class Stylesheet:
    def __init__(self) -> None:
        self._css = files("scimflow.api.console").joinpath("static", STYLESHEET).read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/css; charset=utf-8"
        resp.cache_control = ["public", "max-age=3600"]
        resp.data = self._css


def create_console(services: ConsoleServices) -> WsgiApp:
    middleware: list[SecurityHeadersMiddleware | ConsoleAuthMiddleware] = [
        SecurityHeadersMiddleware(services), ConsoleAuthMiddleware(services),
    ]
    app = WsgiApp(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    pages = Pages(services)
    _install_error_pages(app, pages)
    root = services.root
    app.add_route(root, RootPage(services, pages))
    app.add_route(f"{root}/login", LoginPage(services, pages))
    app.add_route(f"{root}/logout", LogoutAction(services, pages))
    app.add_route(f"{root}/tenants", TenantsPage(services, pages))
    app.add_route(f"{root}/tenants/{{tenant}}", DirectoryPage(services, pages))
    app.add_route(f"{root}/tenants/{{tenant}}/resources/{{reference}}",
                  HistoryPage(services, pages))
    app.add_route(f"{root}/dead-letters", DeadLettersPage(services, pages))
    action = DeadLetterAction(services, pages)
    app.add_route(f"{root}/dead-letters/{{dead_letter_id:int(min=1)}}/replay", action,
                  suffix="replay")
    app.add_route(f"{root}/dead-letters/{{dead_letter_id:int(min=1)}}/discard", action,
                  suffix="discard")
    app.add_route(f"{root}/deliveries", DeliveriesPage(services, pages))
    app.add_route(f"{root}/static/{STYLESHEET}", Stylesheet())
    return app


def _install_error_pages(app: WsgiApp, pages: Pages) -> None:
    """Falcon's errors (404 for an unknown path, 403 for a missing CSRF token, ...) and the
    domain's (NotFound for an unknown tenant or resource, Conflict, ...) as the error page."""

    def falcon_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError,
                     params: dict[str, Any]) -> None:
        _error_page(pages, req, resp, status=error.status_code,
                    title=error.title or "Error", detail=error.description or "")
        if error.headers:
            resp.set_headers(error.headers)

    def domain_error(req: falcon.Request, resp: falcon.Response, error: ScimError,
                     params: dict[str, Any]) -> None:
        _error_page(pages, req, resp, status=error.status,
                    title=falcon.code_to_http_status(error.status)[4:], detail=error.detail)

    app.add_error_handler(falcon.HTTPError, falcon_error)
    app.add_error_handler(ScimError, domain_error)


def _error_page(pages: Pages, req: falcon.Request, resp: falcon.Response, *, status: int,
                title: str, detail: str) -> None:
    pages.render(resp, "error.html", status=status, visitor=req.context.get("visitor"),
                 title=title, detail=detail)
