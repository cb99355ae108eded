"""Small fakes at the console's ports: the read model, operator accounts and sessions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.services.operations import (
    DeadLetterLine,
    DeliveryLine,
    DirectoryPage,
    DirectoryRow,
    HistoryLine,
    ResourceTrace,
    TenantOverview,
)
from scimflow.pipeline.services.operators import ConsoleSession, Operator, StartedSession

NOW = datetime(2026, 12, 4, 15, 0, 0, tzinfo=UTC)
OPERATOR = Operator(id="op-1", username="ops", created_at=NOW - timedelta(days=1))
PASSWORD = "correct horse battery staple"


def overview(name: str = "acme", **changes: object) -> TenantOverview:
    values: dict[str, object] = {
        "tenant_id": f"id-{name}", "name": name, "disabled": False, "backlog": 3,
        "oldest_pending_seconds": 75.0, "drain_rate": 12.5, "dead_letters": 1,
        "deprovision_p50_seconds": 0.4, "deprovision_p99_seconds": 2.0,
        "last_write_at": NOW - timedelta(seconds=30), "last_applied_at": NOW - timedelta(seconds=5),
        "idp_dialect": "Okta", "refused_last_hour": 7,
    }
    values.update(changes)
    return TenantOverview(**values)  # type: ignore[arg-type]


ALICE = DirectoryRow(
    resource_id="u-1", resource_type="User", name="alice@example.com", external_id="ext-1",
    emails=("alice@example.com",), status="active", source="scim",
    last_write_at=NOW - timedelta(minutes=3), last_applied_at=NOW - timedelta(minutes=2),
    memberships=("staff",),
)
DEAD_LETTER = DeadLetterLine(
    id=7, journal_seq=41, tenant_id="id-acme", tenant_name="acme", resource_id="g-1",
    resource_type="Group",
    resource_name="staff", summary="added 1 member", reason="KeyError: 'value'",
    created_at=NOW - timedelta(minutes=10), settled=None, settled_at=None,
)


def history() -> tuple[HistoryLine, ...]:
    return (
        HistoryLine(seq=41, request_id="req-create", summary="created", status="applied",
                    acknowledged_at=NOW - timedelta(minutes=3),
                    applied_at=NOW - timedelta(minutes=2), attempts=1, waited_for=(),
                    last_error=None, dead_letter_id=None, dead_letter_reason=None,
                    dead_letter_settled=False),
        HistoryLine(seq=42, request_id="req-poison", summary="added 1 member", status="dead",
                    acknowledged_at=NOW - timedelta(minutes=1), applied_at=None, attempts=3,
                    waited_for=(), last_error="KeyError: 'value'", dead_letter_id=7,
                    dead_letter_reason="KeyError: 'value'", dead_letter_settled=False),
    )


@dataclass
class FakeReadModel:
    tenant_list: list[TenantOverview] = field(default_factory=lambda: [overview()])
    replayed: list[int] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)
    searches: list[tuple[str, str, str | None]] = field(default_factory=list)

    def tenants(self) -> list[TenantOverview]:
        return self.tenant_list

    def _tenant(self, name_or_id: str) -> TenantOverview:
        for tenant in self.tenant_list:
            if name_or_id in (tenant.name, tenant.tenant_id):
                return tenant
        raise NotFound(f"no tenant {name_or_id!r}")

    def directory(self, tenant: str, query: str = "",
                  resource_type: Literal["User", "Group"] | None = None,
                  limit: int = 50) -> DirectoryPage:
        self.searches.append((tenant, query, resource_type))
        found = self._tenant(tenant)
        rows = (ALICE,) if ALICE.name.startswith(query.lower()) else ()
        return DirectoryPage(found, query, resource_type, rows, truncated=False)

    def trace(self, tenant: str, reference: str) -> ResourceTrace:
        found = self._tenant(tenant)
        if reference not in (ALICE.resource_id, ALICE.name):
            raise NotFound(f"no resource {reference!r}")
        return ResourceTrace(found, ALICE, history(), (), ())

    def dead_letters(self, tenant: str | None = None, *, include_settled: bool = False,
                     limit: int = 200) -> list[DeadLetterLine]:
        if tenant is not None:
            self._tenant(tenant)
        return [DEAD_LETTER]

    def replay(self, dead_letter_id: int) -> DeadLetterLine:
        if dead_letter_id != DEAD_LETTER.id:
            raise NotFound(f"no dead letter {dead_letter_id}")
        self.replayed.append(dead_letter_id)
        return DEAD_LETTER

    def discard(self, dead_letter_id: int) -> DeadLetterLine:
        self.discarded.append(dead_letter_id)
        return DEAD_LETTER

    def deliveries(self, tenant: str | None = None, *, limit: int = 200) -> list[DeliveryLine]:
        return [DeliveryLine(endpoint_id="w-1", endpoint_url="https://hooks.example.com/scim",
                             tenant_name="acme", event_id="ev-1",
                             attempted_at=NOW - timedelta(seconds=20), status_code=204,
                             outcome="delivered", duration_ms=12.0)]


@dataclass
class FakeAccounts:
    asked: list[str] = field(default_factory=list)

    def authenticate(self, username: str, password: str) -> Operator | None:
        self.asked.append(username)
        return OPERATOR if (username, password) == (OPERATOR.username, PASSWORD) else None


@dataclass
class FakeSessions:
    live: dict[str, ConsoleSession] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)

    def start(self, operator: Operator) -> StartedSession:
        token = secrets.token_urlsafe(16)
        session = ConsoleSession(operator, secrets.token_urlsafe(16), NOW + timedelta(hours=12))
        self.live[token] = session
        return StartedSession(token, session)

    def find(self, token: str) -> ConsoleSession | None:
        return self.live.get(token)

    def end(self, token: str) -> None:
        self.ended.append(token)
        self.live.pop(token, None)
