"""Every failure answers with a SCIM error body (RFC 7644 §3.12), never Falcon's own.

Handlers are registered by base class and Falcon picks the most specific one, so a `ScimError`
renders itself, a Falcon `HTTPError` (unknown route, method not allowed, bad header) is
translated, and anything else is a 500 that reveals nothing but the request id.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import logging
from typing import Any, cast

import falcon

from scimflow.api.services import WsgiApp
from scimflow.pipeline.errors import (
    InvalidSyntax,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ScimError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from scimflow.pipeline.services.auth_throttle import AuthenticationThrottled

log = logging.getLogger(__name__)

BEARER_CHALLENGE = 'Bearer realm="scim"'

# Falcon errors with a SCIM counterpart take its wording; other statuses keep Falcon's title.
_SCIM_BY_STATUS: dict[int, type[ScimError]] = {
    cls.status: cls
    for cls in (NotFound, MethodNotAllowed, NotAcceptable, PayloadTooLarge, UnsupportedMediaType)
}


class InternalError(ScimError):
    status = 500
    default_detail = "An unexpected error occurred."


def install_error_handlers(app: WsgiApp) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(ScimError, handle_scim_error)


def handle_scim_error(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]
) -> None:
    # Falcon calls this handler only for ScimError, the class it is registered for.
    scim_error = cast(ScimError, error)
    if isinstance(scim_error, Unavailable) and not isinstance(scim_error, AuthenticationThrottled):
        # (A throttled address is logged once, when its refusal starts, not per request.)
        # Operators need to see a database outage or admission control at work.
        log.warning("Request %s refused: %s", _request_id(req), scim_error.detail)
    render_error(req, resp, scim_error)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]
) -> None:
    http_error = cast(falcon.HTTPError, error)
    render_error(req, resp, _scim_equivalent(http_error), status=http_error.status_code)
    if http_error.headers:
        resp.set_headers(http_error.headers)  # e.g. `Allow` on a 405


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]
) -> None:
    request_id = _request_id(req)
    log.error(
        "Unhandled error in %s %s (request %s)", req.method, req.path, request_id, exc_info=error
    )
    # The body names the request id, so support can find the logged traceback; nothing else.
    render_error(req, resp, InternalError(f"An unexpected error occurred (request {request_id})."))


def render_error(
    req: falcon.Request, resp: falcon.Response, error: ScimError, *, status: int | None = None
) -> None:
    body = error.to_body()
    if status is not None:
        body["status"] = str(status)
    resp.status = status or error.status
    resp.media = body
    if isinstance(error, Unavailable):
        # Okta re-schedules the throttled job and Entra suspends the tenant's provisioning for
        # this long, instead of failing the request into a task or a 40-minute retry.
        resp.set_header("Retry-After", str(error.retry_after))
    if isinstance(error, Unauthorized):
        resp.set_header("WWW-Authenticate", _challenge(req))


def _challenge(req: falcon.Request) -> str:
    # RFC 6750 §3.1: no error code when credentials are missing, invalid_token when they fail.
    if req.get_header("Authorization"):
        return BEARER_CHALLENGE + ', error="invalid_token"'
    return BEARER_CHALLENGE


def _scim_equivalent(error: falcon.HTTPError) -> ScimError:
    if isinstance(error, falcon.MediaNotFoundError | falcon.MediaMalformedError):
        return InvalidSyntax(error.description)
    scim_class = _SCIM_BY_STATUS.get(error.status_code)
    if scim_class is not None:
        return scim_class(error.description)
    return ScimError(error.description or error.title)


def _request_id(req: falcon.Request) -> str:
    return str(getattr(req.context, "request_id", "-"))
