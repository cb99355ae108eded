"""What the HTTP adapter needs from the rest of the system, handed in by the composition root.

The adapter never builds a service itself: the dispatcher (Celery or in-process) is already
inside `writes`, so `api/` stays free of the queue (tests/unit/test_layering.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import falcon

from pipeline.accept import WriteService
from pipeline.reads import ReadService
from pipeline.scim.discovery import Capabilities
from pipeline.scim.registry import SchemaRegistry
from pipeline.settings import Settings
from pipeline.tenancy import Tenancy

API_PREFIX = "/scim/v2"

# The Falcon app type this adapter builds (WSGI, default request and response classes).
WsgiApp = falcon.App[falcon.Request, falcon.Response]


@dataclass(frozen=True)
class ApiServices:
    settings: Settings
    tenancy: Tenancy
    writes: WriteService
    reads: ReadService
    registry: SchemaRegistry
    capabilities: Capabilities
    # Raises `Unavailable` when the service cannot serve (database unreachable).
    ready: Callable[[], None]

    @property
    def base_url(self) -> str:
        """The absolute SCIM base URL, from which every `Location` and `meta.location` is built."""
        return self.settings.public_url.rstrip("/") + API_PREFIX
