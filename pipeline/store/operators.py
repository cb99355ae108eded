"""Operator accounts and their console sessions (`operators`, `console_sessions`).
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.errors import Uniqueness
from scimflow.pipeline.store.models import ConsoleSessionRow, OperatorRow


@dataclass(frozen=True, slots=True)
class StoredOperator:
    id: str
    username: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSession:
    operator: StoredOperator
    csrf_token: str
    expires_at: datetime


_OPERATOR_COLUMNS = (OperatorRow.id, OperatorRow.username, OperatorRow.password_hash,
                     OperatorRow.created_at)


def add_operator(session: Session, operator: StoredOperator, *, username_key: str) -> None:
    """Raises Uniqueness when the folded username is taken (the unique index decides a race:
    `unit_of_work` turns its refusal into the same 409)."""
    if find_operator(session, username_key) is not None:
        raise Uniqueness(f"An operator named {operator.username!r} already exists.")
    session.execute(insert(OperatorRow).values(
        id=operator.id, username=operator.username, username_key=username_key,
        password_hash=operator.password_hash, created_at=operator.created_at))


def find_operator(session: Session, username_key: str) -> StoredOperator | None:
    row = session.execute(
        select(*_OPERATOR_COLUMNS).where(OperatorRow.username_key == username_key)
    ).first()
    return None if row is None else StoredOperator(*row)


def list_operators(session: Session) -> list[StoredOperator]:
    rows = session.execute(select(*_OPERATOR_COLUMNS).order_by(OperatorRow.username_key))
    return [StoredOperator(*row) for row in rows]


def set_password_hash(session: Session, operator_id: str, password_hash: str) -> None:
    session.execute(update(OperatorRow).where(OperatorRow.id == operator_id)
                    .values(password_hash=password_hash))


def remove_operator(session: Session, operator_id: str) -> None:
    """The operator and its sessions (deleted here too: SQLite enforces no foreign keys)."""
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.operator_id == operator_id))
    session.execute(delete(OperatorRow).where(OperatorRow.id == operator_id))


def end_sessions_of(session: Session, operator_id: str) -> None:
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.operator_id == operator_id))


def add_session(session: Session, *, token_hash: str, operator_id: str, csrf_token: str,
                created_at: datetime, expires_at: datetime) -> None:
    session.execute(insert(ConsoleSessionRow).values(
        token_hash=token_hash, operator_id=operator_id, csrf_token=csrf_token,
        created_at=created_at, expires_at=expires_at))


def find_session(session: Session, token_hash: str, *, now: datetime) -> StoredSession | None:
    """An unexpired session and its operator (a removed operator has none left)."""
    row = session.execute(
        select(*_OPERATOR_COLUMNS, ConsoleSessionRow.csrf_token, ConsoleSessionRow.expires_at)
        .join(OperatorRow, OperatorRow.id == ConsoleSessionRow.operator_id)
        .where(ConsoleSessionRow.token_hash == token_hash, ConsoleSessionRow.expires_at > now)
    ).first()
    if row is None:
        return None
    return StoredSession(StoredOperator(*row[:4]), row.csrf_token, row.expires_at)


def end_session(session: Session, token_hash: str) -> None:
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == token_hash))


def end_expired_sessions(session: Session, *, now: datetime) -> None:
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now))
