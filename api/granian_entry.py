"""The WSGI app factory for granian (`--factory`): each worker process builds its own engine,
pools and doorbell thread; importing this module builds nothing.

`RequestDeadline` is the per-request limit granian lacks: Python cannot stop a thread stuck
past it, so the process ends itself, logging the request, and granian respawns it; the other
requests it was serving see their connection close, which IdPs retry.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from scimflow.api.wsgi import production_app

WsgiCallable = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

REQUEST_TIMEOUT_SECONDS = 60.0
# Exit status of a process ended by the deadline (EX_SOFTWARE), for whoever reads the logs.
DEADLINE_EXIT_STATUS = 70

log = logging.getLogger(__name__)


def end_process() -> None:
    logging.shutdown()
    os._exit(DEADLINE_EXIT_STATUS)


class RequestDeadline:
    """Ends the process when one request has been in the application longer than the limit."""

    def __init__(self, app: WsgiCallable, limit_seconds: float, *,
                 on_expired: Callable[[], None] = end_process,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._limit = limit_seconds
        self._on_expired = on_expired
        self._clock = clock
        # Thread id -> (start, method and path) of the request that thread is serving.
        self._serving: dict[int, tuple[float, str]] = {}

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        thread = threading.get_ident()
        what = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
        self._serving[thread] = (self._clock(), what)
        try:
            return self._app(environ, start_response)
        finally:
            del self._serving[thread]

    def overdue(self) -> list[str]:
        """The requests past the limit, as 'METHOD path (N s)'."""
        now = self._clock()
        return [f"{what} ({now - started:.0f} s)"
                for started, what in list(self._serving.values())
                if now - started > self._limit]

    def check(self) -> bool:
        """End the process if a request is overdue; False if none is."""
        late = self.overdue()
        if not late:
            return False
        log.critical("request(s) still running after %.0f s, restarting this API process: %s",
                     self._limit, "; ".join(late))
        self._on_expired()
        return True

    def watch(self, interval_seconds: float = 1.0) -> threading.Thread:
        def loop() -> None:
            while True:
                time.sleep(interval_seconds)
                self.check()

        watcher = threading.Thread(target=loop, name="request-deadline", daemon=True)
        watcher.start()
        return watcher


def deadline_app(app: WsgiCallable, limit_seconds: float = REQUEST_TIMEOUT_SECONDS) -> WsgiCallable:
    guarded = RequestDeadline(app, limit_seconds)
    guarded.watch()
    return guarded


def application() -> WsgiCallable:
    return deadline_app(production_app())
