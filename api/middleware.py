"""Request ids, content negotiation, bearer-token authentication (tenants' SCIM tokens under
the SCIM base, application keys on the events and application APIs) and connection reuse.

Applied to every request before routing. See docs/ARCHITECTURE.md ("The HTTP edge").
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import falcon

from scimflow.api.services import API_PREFIX
from scimflow.pipeline import logs
from scimflow.pipeline.errors import NotAcceptable, Unauthorized
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.auth_throttle import AuthenticationThrottled, AuthFailureThrottle
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.tenants import TenantRef, token_digest

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# Every response is SCIM JSON; a client must accept one of these (RFC 7644 §3.1, §3.8).
RESPONSE_MEDIA_TYPES = ("application/scim+json", "application/json")
# A resource answering in a type of its own, which its clients ask for by name.
OWN_MEDIA_TYPES = {"/events/jwks.json": ("application/jwk-set+json",),
                   "/metrics": ("text/plain", "application/openmetrics-text")}
# Health probes come from the orchestrator, which holds no tenant token; so does Prometheus,
# scraping /metrics (operators keep it off the public network: docs/OPERATIONS.md).
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The events API answers application keys only; its JWKS (/events/jwks.json) is public.
APP_KEY_PATHS = frozenset({"/events", "/events/poll"})
# So does the application API, everything under it.
APP_KEY_PREFIX = "/app/"

# A client-supplied id is kept only if it is short and plain: it is echoed in a header, written
# to logs and stored in the journal's 64-character `request_id` column.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,63}")


class RequestIdMiddleware:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        supplied = req.get_header(REQUEST_ID_HEADER)
        if supplied and _SANE_REQUEST_ID.fullmatch(supplied):
            request_id = supplied
        else:
            request_id = uuid.uuid4().hex
        req.context.request_id = request_id
        # Every line logged while the request is served names it (pipeline/logs.py).
        req.context.request_id_token = logs.bind(request_id=request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header(REQUEST_ID_HEADER, request_id_of(req))
        token = getattr(req.context, "request_id_token", None)
        if token is not None:
            # Also forgets what was bound after it (the tenant: api/metrics.py).
            logs.unbind(token)


class AcceptMiddleware:
    """406 when the Accept header excludes SCIM JSON (wildcards and q-values honoured)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        accepted = RESPONSE_MEDIA_TYPES + OWN_MEDIA_TYPES.get(req.path, ())
        if not any(req.client_accepts(media_type) for media_type in accepted):
            raise NotAcceptable()


class BearerAuthMiddleware:
    """`Authorization: Bearer <token>` → the tenant, or 401 before anything else runs.

    An address that keeps failing gets 429 for its unknown tokens (AuthFailureThrottle).
    """

    def __init__(self, tenancy: Tenancy, throttle: AuthFailureThrottle | None = None) -> None:
        self._tenancy = tenancy
        self._throttle = throttle or AuthFailureThrottle(limit=0, window_seconds=0)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in UNAUTHENTICATED_PATHS or not _under_scim_base(req.path):
            return  # a path outside the SCIM base is a 404 for anyone: nothing to protect
        source = req.remote_addr or "-"
        try:
            token = bearer_token(req.get_header("Authorization"))
        except Unauthorized:
            self._count_failure(source)
            raise
        key = token_digest(token)
        retry_after = self._throttle.refusal(source, key)
        if retry_after is not None:
            raise AuthenticationThrottled(retry_after=retry_after)
        try:
            req.context.tenant = self._tenancy.authenticate(token)
        except Unauthorized:
            self._count_failure(source)
            raise
        self._throttle.succeeded(key)

    def _count_failure(self, source: str) -> None:
        if self._throttle.failed(source):
            log.warning("Authentication failures from %s: refusing unknown tokens for a while",
                        source)


class AppKeyAuthMiddleware:
    """`Authorization: Bearer sfk_…` → the application key's grant on the events API, or 401.

    A tenant's SCIM token is no application key (another table), so it gets 401 here, as an
    application key gets 401 under the SCIM base. Failures count towards the same throttle.
    """

    def __init__(self, app_keys: AppKeys, throttle: AuthFailureThrottle | None = None) -> None:
        self._app_keys = app_keys
        self._throttle = throttle or AuthFailureThrottle(limit=0, window_seconds=0)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path not in APP_KEY_PATHS and not req.path.startswith(APP_KEY_PREFIX):
            return
        source = req.remote_addr or "-"
        try:
            key = bearer_token(req.get_header("Authorization"))
        except Unauthorized:
            self._throttle.failed(source)
            raise
        digest = token_digest(key)
        retry_after = self._throttle.refusal(source, digest)
        if retry_after is not None:
            raise AuthenticationThrottled(retry_after=retry_after)
        grant = self._app_keys.authenticate(key)
        if grant is None:
            if self._throttle.failed(source):
                log.warning("Authentication failures from %s: refusing unknown keys for a while",
                            source)
            raise Unauthorized()
        self._throttle.succeeded(digest)
        req.context.app_grant = grant


class ConnectionReuseMiddleware:
    """`Connection: close` on a response to a request whose body was left unread.

    An early answer (413, 401, 415, a 404 on a POST...) does not read the body; the client may
    still be sending it, and the server would have to read it all before the next request
    can start. Closing is what lets the client start its next request cleanly (the API server
    honours the header: api/buffered_worker.py).
    """

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        announced = bool(req.content_length) or req.get_header("Transfer-Encoding") is not None
        if announced and not getattr(req.context, "body_read", False):
            resp.set_header("Connection", "close")


def _under_scim_base(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def bearer_token(authorization: str | None) -> str:
    """The token of an RFC 6750 `Bearer` credential (the scheme name is case-insensitive)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


def tenant_of(req: falcon.Request) -> TenantRef:
    """The authenticated tenant; a responder reached without one fails closed."""
    tenant: Any = getattr(req.context, "tenant", None)
    if not isinstance(tenant, TenantRef):
        raise Unauthorized()
    return tenant


def app_grant_of(req: falcon.Request) -> AppGrant:
    """The authenticated application key's grant; a responder reached without one fails
    closed."""
    grant: Any = getattr(req.context, "app_grant", None)
    if not isinstance(grant, AppGrant):
        raise Unauthorized()
    return grant


def request_id_of(req: falcon.Request) -> str:
    return str(req.context.request_id)
