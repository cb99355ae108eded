"""Operator accounts and their console sessions: not tenant tokens, never valid on /scim/v2.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.ports import Clock, utc_now


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


class OperatorAccounts:
    """Created with `scimflow operator create`; passwords hashed with argon2id."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._clock = clock

    def create(self, username: str, password: str) -> Operator:
        """Raises pipeline.errors.Conflict for a taken username, BadRequest for a weak password."""
        raise NotImplementedError

    def set_password(self, username: str, password: str) -> None:
        raise NotImplementedError

    def remove(self, username: str) -> None:
        """Also ends the operator's sessions."""
        raise NotImplementedError

    def list(self) -> list[Operator]:
        raise NotImplementedError

    def authenticate(self, username: str, password: str) -> Operator | None:
        """None for an unknown user or a wrong password (the same work either way)."""
        raise NotImplementedError


class ConsoleSessions:
    def __init__(self, sessions: sessionmaker[Session], *, lifetime_hours: float,
                 clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self._lifetime_hours = lifetime_hours
        self._clock = clock

    def start(self, operator: Operator) -> StartedSession:
        raise NotImplementedError

    def find(self, token: str) -> ConsoleSession | None:
        """None for an unknown, expired or ended session, or a removed operator."""
        raise NotImplementedError

    def end(self, token: str) -> None:
        raise NotImplementedError
