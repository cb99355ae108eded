"""Telling the traffic recorder about each authenticated SCIM request: the tenant, its
User-Agent and whether it was answered 429 (pipeline/services/traffic.py keeps it in memory
and writes it every few seconds; nothing here touches the database).
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from typing import Protocol

import falcon

from scimflow.pipeline.store.tenants import TenantRef

TOO_MANY_REQUESTS = 429


class TrafficObserver(Protocol):
    def observe(self, tenant_id: str, user_agent: str | None, *, refused: bool) -> None: ...


class TrafficObservationMiddleware:
    """After each response: requests no tenant authenticated are not a tenant's traffic."""

    def __init__(self, observer: TrafficObserver) -> None:
        self._observer = observer

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        tenant = getattr(req.context, "tenant", None)
        if isinstance(tenant, TenantRef):
            self._observer.observe(tenant.id, req.user_agent,
                                   refused=resp.status_code == TOO_MANY_REQUESTS)
