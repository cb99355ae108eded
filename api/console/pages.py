"""The console's pages and actions: sign in and out, tenants, a tenant's directory, a
resource's history, dead letters (replay, discard) and webhook deliveries.

Each reads through `Operations`; an unknown tenant or resource is its NotFound, rendered as
the 404 page by the app's error handlers. See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from typing import Literal

import falcon

from scimflow.api.console.auth import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    form_of,
    login_token,
    set_cookie,
    tokens_match,
    visitor_of,
)
from scimflow.api.console.render import Pages
from scimflow.api.console.services import ConsoleServices

# How often the tenants page reloads itself while its auto-refresh is on.
REFRESH_SECONDS = 10
# The longest search a directory page takes (a prefix of a name, id or email).
MAX_QUERY_CHARS = 200
# No operator is named longer (pipeline/store/operators.py: 200) or with NUL, which the
# database would refuse: such a login fails like a wrong password, without a lookup.
MAX_USERNAME_CHARS = 200
RESOURCE_TYPES: dict[str, Literal["User", "Group"] | None] = {
    "": None, "User": "User", "Group": "Group",
}


class ConsolePage:
    def __init__(self, services: ConsoleServices, pages: Pages) -> None:
        self._services = services
        self._pages = pages

    @property
    def root(self) -> str:
        return self._services.root


class RootPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(f"{self.root}/tenants")


class LoginPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_of(req)
        if not tokens_match(req.cookies.get(LOGIN_CSRF_COOKIE), form.get(CSRF_FIELD)):
            raise falcon.HTTPForbidden(
                title="Forbidden", description="The form's CSRF token is missing or wrong."
            )
        username, password = form.get("username", "").strip(), form.get("password", "")
        throttle, source = self._services.login_throttle, req.remote_addr or "-"
        # "" is no token: a refused address is refused whichever username it tries.
        wait = throttle.refusal(source, "")
        if wait is not None:
            resp.set_header("Retry-After", str(wait))
            self._show(req, resp, status=429, username=username,
                       error="Too many wrong passwords from this address: try again later.")
            return
        operator = (
            self._services.accounts.authenticate(username, password)
            if _plausible(username, password) else None
        )
        if operator is None:
            throttle.failed(source)
            self._show(req, resp, status=401, username=username,
                       error="Wrong username or password.")
            return
        started = self._services.sessions.start(operator)
        lifetime = started.session.expires_at - self._services.now()
        set_cookie(resp, self._services, SESSION_COOKIE, started.token,
                   max_age=max(int(lifetime.total_seconds()), 0))
        clear_cookie(resp, self._services, LOGIN_CSRF_COOKIE)
        raise falcon.HTTPSeeOther(f"{self.root}/tenants")

    def _show(self, req: falcon.Request, resp: falcon.Response, *, status: int = 200,
              username: str = "", error: str | None = None) -> None:
        token = login_token(req.cookies.get(LOGIN_CSRF_COOKIE))
        set_cookie(resp, self._services, LOGIN_CSRF_COOKIE, token, same_site="Strict")
        self._pages.render(resp, "login.html", status=status, csrf_token=token,
                           username=username, error=error)


def _plausible(username: str, password: str) -> bool:
    return (0 < len(username) <= MAX_USERNAME_CHARS and bool(password)
            and "\x00" not in username + password)


class LogoutAction(ConsolePage):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._services.sessions.end(visitor_of(req).token)
        clear_cookie(resp, self._services, SESSION_COOKIE)
        raise falcon.HTTPSeeOther(f"{self.root}/login")


class TenantsPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        auto = req.get_param_as_bool("refresh", default=False)
        self._pages.render(resp, "tenants.html", visitor=visitor_of(req),
                           tenants=self._services.operations.tenants(), auto_refresh=auto,
                           refresh=REFRESH_SECONDS if auto else None)


class DirectoryPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response, tenant: str) -> None:
        query = (req.get_param("q") or "").strip()
        if len(query) > MAX_QUERY_CHARS:
            raise falcon.HTTPBadRequest(
                title="Bad request", description=f"Search at most {MAX_QUERY_CHARS} characters."
            )
        kind = req.get_param("type") or ""
        if kind not in RESOURCE_TYPES:
            raise falcon.HTTPBadRequest(title="Bad request",
                                        description="The type is User, Group or empty.")
        page = self._services.operations.directory(tenant, query, RESOURCE_TYPES[kind])
        self._pages.render(resp, "directory.html", visitor=visitor_of(req), page=page,
                           kind=kind)


class HistoryPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response, tenant: str,
               reference: str) -> None:
        trace = self._services.operations.trace(tenant, reference)
        self._pages.render(resp, "history.html", visitor=visitor_of(req), trace=trace,
                           back=req.relative_uri)


class DeadLettersPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        tenant = req.get_param("tenant") or None
        settled = req.get_param_as_bool("settled", default=False)
        letters = self._services.operations.dead_letters(tenant, include_settled=settled)
        self._pages.render(resp, "dead_letters.html", visitor=visitor_of(req),
                           letters=letters, tenant=tenant or "", settled=settled,
                           back=req.relative_uri)


class DeadLetterAction(ConsolePage):
    """Replay or discard one dead letter, then back to the page the button was on."""

    def on_post_replay(self, req: falcon.Request, resp: falcon.Response,
                       dead_letter_id: int) -> None:
        self._services.operations.replay(dead_letter_id)
        raise falcon.HTTPSeeOther(self._back(req))

    def on_post_discard(self, req: falcon.Request, resp: falcon.Response,
                        dead_letter_id: int) -> None:
        self._services.operations.discard(dead_letter_id)
        raise falcon.HTTPSeeOther(self._back(req))

    def _back(self, req: falcon.Request) -> str:
        """The form's page if it is one of the console's (never another site's)."""
        back = form_of(req).get("back", "")
        inside = back.startswith(f"{self.root}/") and not back.startswith("//")
        return back if inside and "\\" not in back else f"{self.root}/dead-letters"


class DeliveriesPage(ConsolePage):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        tenant = req.get_param("tenant") or None
        self._pages.render(resp, "deliveries.html", visitor=visitor_of(req),
                           deliveries=self._services.operations.deliveries(tenant),
                           tenant=tenant or "")
