"""Composition root of the console process (`scimflow console`): one Settings read builds
the read model, operator accounts and sessions, and the console app.

`application()` is granian's factory (`--factory`: built in each server process after the
fork); `app` the same for gunicorn and uWSGI, built on first access. `build_console(settings,
dispatcher)` wires the app around any doorbell (`scimflow serve` passes its in-process worker).
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from typing import Any

from scimflow.api.console.app import create_console
from scimflow.api.console.services import ConsoleServices
from scimflow.api.services import WsgiApp
from scimflow.api.wsgi import configure_logging
from scimflow.pipeline.ports import Dispatcher
from scimflow.pipeline.services.operations import Operations
from scimflow.pipeline.services.operators import ConsoleSessions, OperatorAccounts
from scimflow.pipeline.services.recent_pages import RecentPages
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions


def build_console(settings: Settings, dispatcher: Dispatcher) -> WsgiApp:
    sessions = make_sessions(make_engine(settings, "api"))
    return create_console(ConsoleServices(
        # The tenants list and tenant pages operators leave open: recent, not per request.
        operations=RecentPages(Operations(sessions, dispatcher)),
        accounts=OperatorAccounts(sessions),
        sessions=ConsoleSessions(sessions, lifetime_hours=settings.console_session_hours),
        secure_cookie=settings.console_secure_cookie,
    ))


def production_console() -> WsgiApp:
    from scimflow.workers.dispatch import broker_dispatcher  # noqa: PLC0415 - production only

    settings = Settings.from_env()
    configure_logging(settings)
    # A replay rings its tenant's workers; the server process outlives the coalescing window.
    return build_console(settings, broker_dispatcher(settings, coalesce=True))


def application() -> WsgiApp:
    return production_console()


def __getattr__(name: str) -> Any:
    # Built on first access, in each server process (after fork), never at import.
    if name == "app":
        globals()["app"] = production_console()
        return globals()["app"]
    raise AttributeError(name)
