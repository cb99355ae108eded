"""What the console is built from: the read model, operator accounts and sessions, options.

The composition roots (api/console_wsgi.py, ops/serve.py) build one of these.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.services.auth_throttle import AuthFailureThrottle
from scimflow.pipeline.services.operations import (
    DeadLetterLine,
    DeliveryLine,
    DirectoryPage,
    ResourceTrace,
    TenantOverview,
)
from scimflow.pipeline.services.operators import (
    ConsoleSession,
    Operator,
    StartedSession,
)

CONSOLE_ROOT = "/console"

LOGIN_FAILURES = 10
LOGIN_WINDOW_SECONDS = 300.0


class ReadModel(Protocol):
    """The part of Operations the console uses (Operations itself in production)."""

    def tenants(self) -> list[TenantOverview]: ...

    def directory(self, tenant: str, query: str = "",
                  resource_type: Literal["User", "Group"] | None = None,
                  limit: int = 50) -> DirectoryPage: ...

    def trace(self, tenant: str, reference: str) -> ResourceTrace: ...

    def dead_letters(self, tenant: str | None = None, *, include_settled: bool = False,
                     limit: int = 200) -> list[DeadLetterLine]: ...

    def replay(self, dead_letter_id: int) -> DeadLetterLine: ...

    def discard(self, dead_letter_id: int) -> DeadLetterLine: ...

    def deliveries(self, tenant: str | None = None, *, limit: int = 200) -> list[DeliveryLine]: ...


class Accounts(Protocol):
    """The part of OperatorAccounts the console uses."""

    def authenticate(self, username: str, password: str) -> Operator | None: ...


class Sessions(Protocol):
    """The part of ConsoleSessions the console uses."""

    def start(self, operator: Operator) -> StartedSession: ...

    def find(self, token: str) -> ConsoleSession | None: ...

    def end(self, token: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ConsoleServices:
    operations: ReadModel
    accounts: Accounts
    sessions: Sessions
    # Send the session cookie over HTTPS only (settings.console_secure_cookie).
    secure_cookie: bool = True
    root: str = CONSOLE_ROOT
    clock: Clock = utc_now
    # Wrong passwords per client address: past LOGIN_FAILURES in LOGIN_WINDOW_SECONDS, its
    # logins are refused (429) for as long, before any password is hashed.
    login_throttle: AuthFailureThrottle = field(
        default_factory=lambda: AuthFailureThrottle(LOGIN_FAILURES, LOGIN_WINDOW_SECONDS))

    def now(self) -> datetime:
        return self.clock()
