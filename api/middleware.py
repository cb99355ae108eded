"""Request ids and bearer-token authentication, applied to every request before routing."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

import falcon

from pipeline.errors import Unauthorized
from pipeline.store.tenants import TenantRef
from pipeline.tenancy import Tenancy

REQUEST_ID_HEADER = "X-Request-Id"
# Health probes come from the orchestrator, which holds no tenant token.
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})

# The request id of the request being served, for log records (see RequestIdLogFilter).
current_request_id: ContextVar[str | None] = ContextVar("scimflow_request_id", default=None)

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
        req.context.request_id_token = current_request_id.set(request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header(REQUEST_ID_HEADER, request_id_of(req))
        token = getattr(req.context, "request_id_token", None)
        if token is not None:
            current_request_id.reset(token)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record (install it on the handlers of the process)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


class BearerAuthMiddleware:
    """`Authorization: Bearer <token>` → the tenant, or 401 before anything else runs."""

    def __init__(self, tenancy: Tenancy) -> None:
        self._tenancy = tenancy

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in UNAUTHENTICATED_PATHS:
            return
        token = bearer_token(req.get_header("Authorization"))
        req.context.tenant = self._tenancy.authenticate(token)


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


def request_id_of(req: falcon.Request) -> str:
    return str(req.context.request_id)
