"""Who may use the console: the session cookie, CSRF tokens, and the security headers.

Only the console's own cookie opens it: a tenant's bearer token, an application key or a Basic
header is never read here. Every state-changing request is a POST carrying a CSRF token in a
form field: the session's synchronizer token, or before login a double-submit token matched
against a cookie of its own (SameSite=Strict, so another site can neither send nor set it for
a cross-site POST). See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

import falcon

from scimflow.api.console.services import ConsoleServices
from scimflow.pipeline.services.operators import ConsoleSession

SESSION_COOKIE = "scimflow_console"
LOGIN_CSRF_COOKIE = "scimflow_console_login"
CSRF_FIELD = "csrf_token"
# A console form is a few short fields; anything larger is not one of ours.
MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    # Not `no-referrer`: under it browsers send `Origin: null` with the console's own form
    # posts, which then count as cross-site and lose their SameSite=Strict cookie.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class Visitor:
    """The signed-in operator's session and its cookie value."""

    session: ConsoleSession
    token: str


def read_form(req: falcon.Request) -> dict[str, str]:
    """A urlencoded form's fields (first value of each); empty for any other body."""
    if (req.content_type or "").split(";")[0].strip().lower() != FORM_TYPE:
        return {}
    if (req.content_length or 0) > MAX_FORM_BYTES:
        raise falcon.HTTPContentTooLarge(title="Form too large")
    body = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(body) > MAX_FORM_BYTES:
        raise falcon.HTTPContentTooLarge(title="Form too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def login_token(current: str | None) -> str:
    """The login form's token: the browser's current one if it is one of ours, so that two
    tabs, or a favicon fetched on the way, do not invalidate a form already shown."""
    if current and _LOGIN_TOKEN.fullmatch(current):
        return current
    return secrets.token_urlsafe(32)


def visitor_of(req: falcon.Request) -> Visitor:
    visitor: Visitor = req.context.visitor
    return visitor


def form_of(req: falcon.Request) -> dict[str, str]:
    form: dict[str, str] = req.context.form
    return form


class ConsoleAuthMiddleware:
    """Admits a request with a live session (or to the login page and the stylesheet), and
    a POST only with its CSRF token."""

    def __init__(self, services: ConsoleServices) -> None:
        self._services = services
        self._root = services.root
        self._public = (f"{services.root}/login", f"{services.root}/static/")

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.visitor = None
        req.context.form = read_form(req) if req.method == "POST" else {}
        if req.path.startswith(self._public) or not self._inside(req.path):
            # Outside the console (a browser's /favicon.ico): its 404, never a redirect.
            return
        token = req.cookies.get(SESSION_COOKIE)
        session = self._services.sessions.find(token) if token else None
        if session is None or token is None:
            self._turn_away(req)
            return
        req.context.visitor = Visitor(session, token)
        if req.method not in ("GET", "HEAD") and not tokens_match(
            session.csrf_token, req.context.form.get(CSRF_FIELD)
        ):
            raise falcon.HTTPForbidden(
                title="Forbidden", description="The form's CSRF token is missing or wrong."
            )

    def _inside(self, path: str) -> bool:
        return path == self._root or path.startswith(f"{self._root}/")

    def _turn_away(self, req: falcon.Request) -> None:
        if req.method in ("GET", "HEAD"):
            raise falcon.HTTPSeeOther(f"{self._services.root}/login")
        raise falcon.HTTPForbidden(title="Forbidden", description="Sign in first.")


class SecurityHeadersMiddleware:
    """The same headers on every answer; nothing but the stylesheet is ever cached."""

    def __init__(self, services: ConsoleServices) -> None:
        self._static = f"{services.root}/static/"

    def process_response(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, req_succeeded: bool) -> None:
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)
        if not (req.path.startswith(self._static) and req_succeeded):
            resp.set_header("Cache-Control", "no-store")


def set_cookie(resp: falcon.Response, services: ConsoleServices, name: str, value: str, *,
               max_age: int | None = None, same_site: str = "Lax") -> None:
    resp.set_cookie(name, value, max_age=max_age, path=services.root,
                    secure=services.secure_cookie, http_only=True, same_site=same_site)


def clear_cookie(resp: falcon.Response, services: ConsoleServices, name: str) -> None:
    resp.unset_cookie(name, path=services.root)
