"""Applications' sessions: registered for a user, checked on every request of the application,
listed and revoked. See docs/APPLICATIONS.md ("Checking sessions").

A check answers from the acknowledged state: a session whose user the IdP has deprovisioned
(or deleted) is `revoked` as soon as that change is acknowledged, before the workers apply it
(which then revoke the session for good and emit `session.revoked`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import Forbidden, InvalidValue, NotFound
from scimflow.pipeline.events.model import identity_of
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.scim.unicode import is_storable_text
from scimflow.pipeline.services.app_users import USER, AppUser, find_user, is_active, user_from
from scimflow.pipeline.services.change_events import PendingEvent, outbox_rows, session_revoked
from scimflow.pipeline.store import acknowledged, journal, outbox, user_sessions
from scimflow.pipeline.store.acknowledged import SCIM
from scimflow.pipeline.store.db import autocommit_sessions, database_errors, unit_of_work
from scimflow.pipeline.store.tenants import TenantRef
from scimflow.pipeline.store.user_sessions import (
    BY_APPLICATION,
    DELETED,
    DEPROVISIONED,
    RevokedSession,
    SessionRow,
)

ACTIVE, REVOKED = "active", "revoked"
MAX_SESSION_ID = 64
# What an application's own session id may hold: one URL path segment, never decoded into two.
SESSION_ID = re.compile(rf"[A-Za-z0-9._~:@+=-]{{1,{MAX_SESSION_ID}}}")


@dataclass(frozen=True, slots=True)
class SessionStatus:
    id: str
    user_id: str
    created_at: datetime
    status: str  # "active" or "revoked"
    reason: str | None  # why it was revoked: deprovisioned, deleted, application
    revoked_at: datetime | None
    user: AppUser | None  # None: the user is deleted


class SessionService:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._reads = autocommit_sessions(sessions)
        self._engine = self._reads.kw["bind"]
        self._clock = clock

    def register(
        self, tenant: TenantRef, user: Mapping[str, Any], session_id: str | None = None
    ) -> SessionStatus:
        """A new session of an active user; `session_id` is the application's own, or one is
        made (unguessable: a session id is all a check needs)."""
        session_id = _checked_id(session_id)
        with unit_of_work(self._sessions) as session:
            found = find_user(session, tenant.id, user)
            if not is_active(found.data):
                raise Forbidden(f"User {found.id} is deprovisioned: it cannot have sessions.")
            user_sessions.register(session, tenant.id, found.id, session_id, now=self._clock())
        return self.check(tenant, session_id)

    def check(self, tenant: TenantRef, session_id: str) -> SessionStatus:
        """Whether the session is active: one indexed read, no transaction."""
        if not is_storable_text(session_id):
            raise NotFound(f"No session {session_id!r} in this tenant.")
        # A bare connection: no ORM session to begin and close, a statement compiled once.
        with database_errors(), self._engine.connect() as connection:
            row = user_sessions.find(connection, tenant.id, session_id)
            if row is None:
                raise NotFound(f"No session {session_id!r} in this tenant.")
            return _status(row, _deleted_at(connection, tenant, row))

    def of_user(self, tenant: TenantRef, user: Mapping[str, Any]) -> list[SessionStatus]:
        with unit_of_work(self._reads) as session:
            found = find_user(session, tenant.id, user)
            rows = user_sessions.of_user(session, tenant.id, found.id)
            return [_status(row, _deleted_at(session.connection(), tenant, row)) for row in rows]

    def revoke(self, tenant: TenantRef, session_id: str, *, request_id: str = "") -> SessionStatus:
        """Revoke one session; emits `session.revoked`. A session revoked already (also by a
        deprovisioning the workers have not applied yet, which keeps its reason) is left as
        it is."""
        current = self.check(tenant, session_id)
        if current.status == REVOKED:
            return current
        self._revoke(tenant, current.user_id, [session_id], request_id)
        return self.check(tenant, session_id)

    def revoke_all(
        self, tenant: TenantRef, user: Mapping[str, Any], *, request_id: str = ""
    ) -> list[SessionStatus]:
        """Revoke every live session of a user; emits `session.revoked` for each."""
        statuses = self.of_user(tenant, user)
        live = [status.id for status in statuses if status.status == ACTIVE]
        if not live:
            return statuses
        self._revoke(tenant, statuses[0].user_id, live, request_id)
        return self.of_user(tenant, user)

    def _revoke(
        self, tenant: TenantRef, user_id: str, session_ids: list[str], request_id: str
    ) -> None:
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            revoked = user_sessions.revoke(session, [(tenant.id, user_id)], reason=BY_APPLICATION,
                                           now=now, session_ids=session_ids)
            current = acknowledged.get(session, tenant.id, USER, user_id)
            events = [_revoked_event(item, current, now, request_id) for item in revoked]
            outbox.append(session, outbox_rows(events, now))



def _deleted_at(connection: Connection, tenant: TenantRef, row: SessionRow) -> datetime | None:
    """When the session's user was deleted, if that deletion is acknowledged but not applied
    yet (the session is then revoked as of the DELETE): its last journal entry."""
    if row.revoked_at is not None or row.user is not None:
        return None
    last = journal.last_entry_at(connection, tenant.id, row.user_id)
    return last or row.created_at


def _status(row: SessionRow, deleted_at: datetime | None) -> SessionStatus:
    user = None
    if row.user is not None:
        user = user_from(row.user_id, row.user, row.roles, row.user_source or SCIM)
    if row.revoked_at is not None:
        return _revoked(row, user, row.revoked_reason, row.revoked_at)
    if user is None:
        return _revoked(row, None, DELETED, deleted_at)
    if not user.active:
        return _revoked(row, user, DEPROVISIONED, row.user_changed_at)
    return SessionStatus(row.id, row.user_id, row.created_at, ACTIVE, None, None, user)


def _revoked(
    row: SessionRow, user: AppUser | None, reason: str | None, at: datetime | None
) -> SessionStatus:
    return SessionStatus(row.id, row.user_id, row.created_at, REVOKED, reason, at, user)


def _revoked_event(
    item: RevokedSession, user: acknowledged.AcknowledgedResource | None, now: datetime,
    request_id: str,
) -> PendingEvent:
    data = user.data if user is not None else None
    return session_revoked(item, reason=BY_APPLICATION, at=now,
                           version=user.version if user is not None else 0,
                           identity=identity_of(USER, data), request_id=request_id or None)


def _checked_id(session_id: str | None) -> str:
    if session_id is None:
        return "ses_" + secrets.token_hex(16)
    if not (isinstance(session_id, str) and SESSION_ID.fullmatch(session_id)):
        raise InvalidValue(f"A session id is 1 to {MAX_SESSION_ID} of the characters "
                           "A-Z a-z 0-9 . _ ~ : @ + = - (it goes in a URL path).")
    return session_id
