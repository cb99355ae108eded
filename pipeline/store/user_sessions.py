"""Applications' sessions (`user_sessions`): registered, checked against the acknowledged state
of their user, listed, and revoked (by the application, or by the transaction that
deprovisions their user). See docs/APPLICATIONS.md.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import Uniqueness
from scimflow.pipeline.store.app_tables import ROLE_SEPARATOR, UserRole
from scimflow.pipeline.store.models import AcknowledgedRow, UserSession

Key = tuple[str, str]  # (tenant_id, user_id)

# Why a session ended.
DEPROVISIONED = "deprovisioned"  # its user was set inactive
DELETED = "deleted"  # its user was deleted
BY_APPLICATION = "application"  # the application revoked it


@dataclass(frozen=True, slots=True, order=True)
class RevokedSession:
    tenant_id: str
    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session, with its user as acknowledged (None: the user is deleted)."""

    id: str
    user_id: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    user: dict[str, Any] | None
    user_changed_at: datetime | None
    user_source: str | None
    # The user's roles, joined by ROLE_SEPARATOR (roles never hold control characters).
    joined_roles: str | None

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.joined_roles.split(ROLE_SEPARATOR)))) if self.joined_roles \
            else ()


def register(
    session: Session, tenant_id: str, user_id: str, session_id: str, *, now: datetime
) -> None:
    """A new live session; an id already registered is a 409."""
    try:
        with session.begin_nested():
            session.execute(insert(UserSession).values(
                id=session_id, tenant_id=tenant_id, user_id=user_id, created_at=now))
    except IntegrityError as exc:
        raise Uniqueness(f"Session {session_id!r} is already registered.") from exc


def _with_user() -> Any:
    """Sessions with their user's acknowledged state and roles: one round trip per check."""
    roles = (
        select(func.aggregate_strings(UserRole.role, ROLE_SEPARATOR))
        .where(UserRole.tenant_id == UserSession.tenant_id,
               UserRole.user_id == UserSession.user_id)
        .scalar_subquery()
    )
    return (
        select(UserSession.id, UserSession.user_id, UserSession.created_at,
               UserSession.revoked_at, UserSession.revoked_reason,
               AcknowledgedRow.data, AcknowledgedRow.updated_at, AcknowledgedRow.source, roles)
        .outerjoin(AcknowledgedRow, and_(AcknowledgedRow.tenant_id == UserSession.tenant_id,
                                         AcknowledgedRow.id == UserSession.user_id))
    )


# Built once: a check runs on every request of the application, and building and compiling a
# statement costs more than the database takes to answer it.
_FIND: Final = _with_user().where(UserSession.id == bindparam("session_id"),
                                  UserSession.tenant_id == bindparam("tenant_id"))


def find(connection: Connection, tenant_id: str, session_id: str) -> SessionRow | None:
    """One session and its user's acknowledged state: one statement, by primary key."""
    row = connection.execute(_FIND, {"session_id": session_id, "tenant_id": tenant_id}).first()
    return None if row is None else SessionRow(*row)


def of_user(session: Session, tenant_id: str, user_id: str) -> list[SessionRow]:
    rows = session.execute(
        _with_user()
        .where(UserSession.tenant_id == tenant_id, UserSession.user_id == user_id)
        .order_by(UserSession.created_at, UserSession.id)
    )
    return [SessionRow(*row) for row in rows]


def revoke(
    session: Session,
    users: Collection[Key],
    *,
    reason: str,
    now: datetime,
    session_ids: Collection[str] | None = None,
) -> list[RevokedSession]:
    """Revoke the live sessions of these users (only `session_ids` among them, if given);
    return the sessions revoked."""
    if not users:
        return []
    statement = update(UserSession).where(
        tuple_(UserSession.tenant_id, UserSession.user_id).in_(list(users)),
        UserSession.revoked_at.is_(None),
    )
    if session_ids is not None:
        statement = statement.where(UserSession.id.in_(list(session_ids)))
    rows = session.execute(
        statement.values(revoked_at=now, revoked_reason=reason)
        .returning(UserSession.tenant_id, UserSession.user_id, UserSession.id)
    )
    return sorted(RevokedSession(*row) for row in rows)
