"""What the HTTP adapter needs from the rest of the system, handed in by the composition root.

The adapter never builds a service itself: the dispatcher (Celery or in-process) is already
inside `writes`, so `api/` stays free of the queue (tests/unit/test_layering.py).
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import falcon

from scimflow.api.observation import TrafficObserver
from scimflow.pipeline.scim.discovery import Capabilities
from scimflow.pipeline.scim.registry import SchemaRegistry
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.app_sessions import SessionService
from scimflow.pipeline.services.app_users import AppTenants, AppUsers
from scimflow.pipeline.services.events_feed import EventsFeed
from scimflow.pipeline.services.logins import LoginService
from scimflow.pipeline.services.poll_feed import PollFeed
from scimflow.pipeline.services.reads import ReadService
from scimflow.pipeline.services.set_signing import SetSigner
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.tenant_protocols import ProtocolSource
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.tenants import TenantRef

API_PREFIX = "/scim/v2"

# The Falcon app type this adapter builds (WSGI, default request and response classes).
WsgiApp = falcon.App[falcon.Request, falcon.Response]


@dataclass(frozen=True)
class EventsApi:
    """What the events API needs: application keys, the event pages, the poll feed and the
    signer whose JWKS it publishes."""

    app_keys: AppKeys
    feed: EventsFeed
    poll: PollFeed
    signer: SetSigner


@dataclass(frozen=True)
class ApplicationApi:
    """What the application API (/app/v1) needs: its tenants, users, sessions and logins."""

    tenants: AppTenants
    users: AppUsers
    sessions: SessionService
    logins: LoginService


@dataclass(frozen=True)
class ApiServices:
    settings: Settings
    tenancy: Tenancy
    writes: WriteService
    reads: ReadService
    registry: SchemaRegistry  # the built-in schemas: routes and resource type names
    capabilities: Capabilities
    # Raises `Unavailable` when the service cannot serve (database unreachable).
    ready: Callable[[], None]
    # Each tenant's schemas: the built-in ones plus the extensions it declared.
    protocols: ProtocolSource | None = None
    # The events API (/events, /events/poll, /events/jwks.json); absent when not wired.
    events: EventsApi | None = None
    # The application API (/app/v1); absent when not wired. Its keys are the events API's.
    application: ApplicationApi | None = None
    # Told of each tenant's requests (IdP, 429s) for the operator view; absent when not wired.
    traffic: TrafficObserver | None = None

    def registry_for(self, tenant: TenantRef) -> SchemaRegistry:
        """The schemas a tenant sees: validation, rendering and discovery all use these."""
        return self.registry if self.protocols is None else self.protocols.for_tenant(
            tenant.id
        ).registry

    def resource_type_for(self, tenant: TenantRef, name: str) -> ResourceType:
        return self.registry_for(tenant).resource_type(name)

    @property
    def base_url(self) -> str:
        """The absolute SCIM base URL, from which every `Location` and `meta.location` is built."""
        return self.settings.public_url.rstrip("/") + API_PREFIX
