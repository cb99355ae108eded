"""Probes for the orchestrator; they carry no token (see middleware.UNAUTHENTICATED_PATHS).
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from collections.abc import Callable

import falcon


class LivenessEndpoint:
    """The process serves requests; it says nothing about the database."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadinessEndpoint:
    """Ready to serve: `ready` raises Unavailable (503 + Retry-After) when it is not."""

    def __init__(self, ready: Callable[[], None]) -> None:
        self._ready = ready

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._ready()
        resp.media = {"status": "ready"}
