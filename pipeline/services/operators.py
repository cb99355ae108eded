"""Operator accounts and their console sessions: not tenant tokens, never valid on /scim/v2.

Passwords are argon2id hashes (pipeline/passwords/crypto.py); a session cookie is a random
token stored only as its SHA-256, with a CSRF token of its own.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.errors import InvalidValue, NotFound
from scimflow.pipeline.passwords.crypto import Argon2idHasher
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store import operators as store
from scimflow.pipeline.store.db import unit_of_work

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_USERNAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    username: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    operator: Operator
    # The CSRF token every form of this session carries (synchronizer token pattern).
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StartedSession:
    # The cookie value: shown once, stored only as a hash.
    token: str
    session: ConsoleSession


@cache
def _hasher() -> Argon2idHasher:
    return Argon2idHasher()


@cache
def _unknown_user_hash() -> str:
    """A hash to verify against when the username is unknown: the same argon2 work."""
    return _hasher()(secrets.token_urlsafe(16))


def _operator(stored: store.StoredOperator) -> Operator:
    return Operator(stored.id, stored.username, stored.created_at)


def _checked_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > MAX_USERNAME_LENGTH or not name.isprintable():
        raise InvalidValue(
            f"A username is 1 to {MAX_USERNAME_LENGTH} printable characters."
        )
    return name


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidValue(f"A password has at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH or "\x00" in password:
        raise InvalidValue(f"A password has at most {MAX_PASSWORD_LENGTH} characters, no NUL.")
    return password


class OperatorAccounts:
    """Created with `scimflow operator create`; passwords hashed with argon2id."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    def create(self, username: str, password: str) -> Operator:
        """Raises pipeline.errors.Uniqueness (409) for a username taken in any case,
        InvalidValue (400) for a weak password or an unusable username."""
        name = _checked_username(username)
        stored = store.StoredOperator(str(uuid.uuid4()), name,
                                      _hasher()(_checked_password(password)), self._clock())
        with unit_of_work(self._sessions) as session:
            store.add_operator(session, stored, username_key=fold_key(name))
        return _operator(stored)

    def set_password(self, username: str, password: str) -> None:
        """Also ends the operator's sessions: whoever knew the old password is signed out."""
        hashed = _hasher()(_checked_password(password))
        with unit_of_work(self._sessions) as session:
            stored = self._require(session, username)
            store.set_password_hash(session, stored.id, hashed)
            store.end_sessions_of(session, stored.id)

    def remove(self, username: str) -> None:
        """Also ends the operator's sessions."""
        with unit_of_work(self._sessions) as session:
            store.remove_operator(session, self._require(session, username).id)

    def list(self) -> list[Operator]:
        with unit_of_work(self._sessions) as session:
            return [_operator(stored) for stored in store.list_operators(session)]

    def authenticate(self, username: str, password: str) -> Operator | None:
        """None for an unknown user or a wrong password (the same work either way)."""
        with unit_of_work(self._sessions) as session:
            stored = store.find_operator(session, fold_key(username.strip()))
        encoded = stored.password_hash if stored else _unknown_user_hash()
        matches = _hasher().verify(password[:MAX_PASSWORD_LENGTH], encoded)
        return _operator(stored) if stored is not None and matches else None

    @staticmethod
    def _require(session: Session, username: str) -> store.StoredOperator:
        stored = store.find_operator(session, fold_key(username.strip()))
        if stored is None:
            raise NotFound(f"No operator {username!r}.")
        return stored


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ConsoleSessions:
    def __init__(self, sessions: sessionmaker[Session], *, lifetime_hours: float,
                 clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._lifetime_hours = lifetime_hours
        self._clock = clock

    def start(self, operator: Operator) -> StartedSession:
        """A new session; expired ones are swept here (sign-ins are rare, the table small)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + timedelta(hours=self._lifetime_hours)
        with unit_of_work(self._sessions) as session:
            store.end_expired_sessions(session, now=now)
            store.add_session(session, token_hash=token_digest(token), operator_id=operator.id,
                              csrf_token=csrf, created_at=now, expires_at=expires_at)
        return StartedSession(token, ConsoleSession(operator, csrf, expires_at))

    def find(self, token: str) -> ConsoleSession | None:
        """None for an unknown, expired or ended session, or a removed operator."""
        if not token:
            return None
        with unit_of_work(self._sessions) as session:
            found = store.find_session(session, token_digest(token), now=self._clock())
        if found is None:
            return None
        return ConsoleSession(_operator(found.operator), found.csrf_token, found.expires_at)

    def end(self, token: str) -> None:
        with unit_of_work(self._sessions) as session:
            store.end_session(session, token_digest(token))
