"""What operators see: tenants, a tenant's directory, a resource's history, dead letters and
webhook deliveries. One read model for the console (api/console/) and the CLI (ops/).
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.ports import Clock, Dispatcher, utc_now

ResourceStatus = Literal["active", "inactive", "pending", "waiting", "dead-lettered", "deleted"]


@dataclass(frozen=True, slots=True)
class TenantOverview:
    tenant_id: str
    name: str
    disabled: bool
    backlog: int
    oldest_pending_seconds: float | None
    # Commands applied per second over the last minute.
    drain_rate: float
    dead_letters: int
    deprovision_p50_seconds: float | None
    deprovision_p99_seconds: float | None
    last_write_at: datetime | None
    last_applied_at: datetime | None
    # "Okta", "Microsoft Entra ID", "Google Workspace", "OneLogin" or the raw User-Agent.
    idp_dialect: str | None
    refused_last_hour: int


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    resource_id: str
    resource_type: Literal["User", "Group"]
    # userName of a user, displayName of a group.
    name: str
    external_id: str | None
    emails: tuple[str, ...]
    status: ResourceStatus
    source: Literal["scim", "jit"]
    last_write_at: datetime | None
    last_applied_at: datetime | None
    # A user's groups, or a group's member count as a one-item tuple ("12 members").
    memberships: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    tenant: TenantOverview
    query: str
    resource_type: Literal["User", "Group"] | None
    rows: tuple[DirectoryRow, ...]
    # More rows match than were returned.
    truncated: bool


@dataclass(frozen=True, slots=True)
class HistoryLine:
    seq: int
    request_id: str
    # The IdP's operation in words: "created", "replaced", "set active to false",
    # "added 2 members", "deleted".
    summary: str
    status: str
    acknowledged_at: datetime
    applied_at: datetime | None
    attempts: int
    # What it waited for (resource ids), while it waited or the last time it did.
    waited_for: tuple[str, ...]
    last_error: str | None
    dead_letter_id: int | None
    dead_letter_reason: str | None
    dead_letter_settled: bool


@dataclass(frozen=True, slots=True)
class EventLine:
    event_id: str
    type: str
    occurred_at: datetime
    # "delivered to 2 endpoints", "waiting", "no endpoint": from the delivery positions.
    delivery: str


@dataclass(frozen=True, slots=True)
class LoginLine:
    decided_at: datetime
    issuer: str
    subject: str
    decision: str
    reason: str
    action: str


@dataclass(frozen=True, slots=True)
class ResourceTrace:
    tenant: TenantOverview
    resource: DirectoryRow
    history: tuple[HistoryLine, ...]
    events: tuple[EventLine, ...]
    logins: tuple[LoginLine, ...]


@dataclass(frozen=True, slots=True)
class DeadLetterLine:
    id: int
    tenant_id: str
    tenant_name: str
    resource_id: str
    resource_type: str
    resource_name: str
    summary: str
    reason: str
    created_at: datetime
    # "replayed" or "discarded" once settled.
    settled: str | None
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    endpoint_id: str
    endpoint_url: str
    tenant_name: str
    event_id: str
    attempted_at: datetime
    status_code: int | None
    outcome: str
    duration_ms: float | None


class Operations:
    """Read through `sessions`; replaying rings the workers through `dispatcher`.

    Tenants are named by name or id; resources by id, userName, externalId or displayName.
    Unknown ones raise pipeline.errors.NotFound.
    """

    def __init__(self, sessions: sessionmaker[Session], dispatcher: Dispatcher,
                 clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._dispatcher = dispatcher
        self._clock = clock

    def tenants(self) -> list[TenantOverview]:
        raise NotImplementedError

    def tenant(self, name_or_id: str) -> TenantOverview:
        raise NotImplementedError

    def directory(self, tenant: str, query: str = "",
                  resource_type: Literal["User", "Group"] | None = None,
                  limit: int = 50) -> DirectoryPage:
        """Search by userName, externalId, email or displayName (case-insensitive prefix)."""
        raise NotImplementedError

    def trace(self, tenant: str, reference: str) -> ResourceTrace:
        raise NotImplementedError

    def dead_letters(self, tenant: str | None = None, *, include_settled: bool = False,
                     limit: int = 200) -> list[DeadLetterLine]:
        raise NotImplementedError

    def replay(self, dead_letter_id: int) -> DeadLetterLine:
        """Journal the dead command again and ring its tenant's workers."""
        raise NotImplementedError

    def discard(self, dead_letter_id: int) -> DeadLetterLine:
        """Settle a dead letter without applying it (kept for the record)."""
        raise NotImplementedError

    def deliveries(self, tenant: str | None = None, *, limit: int = 200) -> list[DeliveryLine]:
        raise NotImplementedError
