"""The delivery loop's SQL: leasing an endpoint, moving its cursor, backing off, disabling it,
recording attempts, and finding endpoints with something to deliver.
See docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, exists, insert, or_, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.store.bulk import insert_recordset
from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.event_tables import OutboxEvent, WebhookAttempt, WebhookEndpoint


@dataclass(frozen=True, slots=True)
class LeasedEndpoint:
    """An endpoint a delivery task holds, as it was when leased."""

    id: str
    tenant_id: str
    url: str
    event_types: list[str]
    format: str
    secrets: list[dict[str, Any]]
    cursor: int
    failing_since: datetime | None
    failures: int
    # This holder's own mark on the row: every write it makes later checks it.
    token: str


def lease(session: Session, endpoint_id: str, *, now: datetime,
          until: datetime) -> LeasedEndpoint | None:
    """Hold an enabled endpoint that nobody holds and that is not backing off (None: it is
    held, backing off, disabled or gone). A killed holder's lease simply runs out."""
    token = secrets.token_hex(16)
    row = session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.disabled_at.is_(None),
            or_(WebhookEndpoint.lease_until.is_(None), WebhookEndpoint.lease_until < now),
            or_(WebhookEndpoint.next_attempt_at.is_(None), WebhookEndpoint.next_attempt_at <= now),
        )
        .values(lease_until=until, lease_token=token)
        .returning(
            WebhookEndpoint.id, WebhookEndpoint.tenant_id, WebhookEndpoint.url,
            WebhookEndpoint.event_types, WebhookEndpoint.format, WebhookEndpoint.secrets,
            WebhookEndpoint.cursor, WebhookEndpoint.failing_since, WebhookEndpoint.failures,
        )
    ).one_or_none()
    return None if row is None else LeasedEndpoint(**row._asdict(), token=token)


@dataclass(frozen=True, slots=True)
class Move:
    """A cursor moving from where its holder last left it (`start`) to `reached`.

    The update applies only while the holder still holds the lease (its `token`) and the
    cursor is still at `start`: a task whose lease ran out must not write over its successor,
    and an operator's `webhook replay` moves the cursor back while a task holds the endpoint.
    False from a write below: it did nothing, the holder stops.
    """

    endpoint_id: str
    token: str
    start: int
    reached: int

    def where(self) -> Any:
        return and_(WebhookEndpoint.id == self.endpoint_id,
                    WebhookEndpoint.lease_token == self.token,
                    WebhookEndpoint.cursor == self.start)


def advance(session: Session, move: Move, *, lease_until: datetime) -> bool:
    """Everything up to `reached` is delivered: the endpoint is healthy again."""
    return _moved(session, move, cursor=move.reached, lease_until=lease_until, failures=0,
                  failing_since=None, next_attempt_at=None)


def back_off(
    session: Session, move: Move, *, failures: int, failing_since: datetime,
    next_attempt_at: datetime,
) -> bool:
    """Keep what was delivered; try the rest again at `next_attempt_at`."""
    return _moved(session, move, cursor=move.reached, failures=failures,
                  failing_since=failing_since, next_attempt_at=next_attempt_at,
                  lease_until=None, lease_token=None)


def disable(session: Session, move: Move, *, reason: str, now: datetime) -> bool:
    return _moved(session, move, cursor=move.reached, disabled_at=now, disabled_reason=reason,
                  lease_until=None, lease_token=None)


def _moved(session: Session, move: Move, **values: Any) -> bool:
    result = session.execute(update(WebhookEndpoint).where(move.where()).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, endpoint_id: str, token: str) -> None:
    """Give the endpoint back, if this holder still holds it."""
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.lease_token == token)
        .values(lease_until=None, lease_token=None)
    )


ATTEMPT_COLUMNS = ("endpoint_id", "event_position", "event_id", "attempted_at", "status_code",
                   "latency_ms", "error")


def record_attempts(session: Session, attempts: Sequence[dict[str, Any]]) -> None:
    if not attempts:
        return
    if is_postgres(session):
        insert_recordset(session, cast(Table, WebhookAttempt.__table__), ATTEMPT_COLUMNS,
                         attempts)
    else:
        session.execute(insert(WebhookAttempt), list(attempts))


def enabled_endpoints(session: Session, tenants: Collection[str]) -> list[str]:
    """The enabled endpoints of these tenants."""
    if not tenants:
        return []
    return list(session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.tenant_id.in_(list(tenants)), WebhookEndpoint.disabled_at.is_(None)
        )
    ))


def due_endpoints(session: Session, *, now: datetime,
                  rung_before: datetime | None = None) -> list[str]:
    """Enabled endpoints with events past their cursor, not held and not backing off: what a
    lost doorbell, a killed worker or an ended backoff left waiting.

    With `rung_before`, only those not rung since then, marked as rung now: a doorbell still
    waiting in the queue is not rung again every sweep while a backlog lasts.
    """
    waiting = exists().where(
        OutboxEvent.tenant_id == WebhookEndpoint.tenant_id, OutboxEvent.id > WebhookEndpoint.cursor
    )
    due = and_(
        WebhookEndpoint.disabled_at.is_(None),
        or_(WebhookEndpoint.lease_until.is_(None), WebhookEndpoint.lease_until < now),
        or_(WebhookEndpoint.next_attempt_at.is_(None), WebhookEndpoint.next_attempt_at <= now),
        waiting,
    )
    if rung_before is None:
        return list(session.scalars(select(WebhookEndpoint.id).where(due)))
    rung = session.execute(
        update(WebhookEndpoint)
        .where(due, or_(WebhookEndpoint.rung_at.is_(None), WebhookEndpoint.rung_at < rung_before))
        .values(rung_at=now).returning(WebhookEndpoint.id)
    )
    return [row[0] for row in rung]
