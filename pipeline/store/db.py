"""Engines and sessions. No module-level engine: each process builds its own after fork.
See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from scimflow.pipeline.errors import Unavailable, Uniqueness
from scimflow.pipeline.settings import Settings

Role = Literal["api", "worker", "events", "tool"]


def masked_url(database_url: str) -> str:
    """The database URL as operators may see it: the password replaced by `***`."""
    return make_url(database_url).render_as_string(hide_password=True)


def sqlite_file(database_url: str) -> Path | None:
    """The absolute path of a SQLite file database (its URL may be relative); else None."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database)).resolve()


def make_engine(settings: Settings, role: Role) -> Engine:
    """Create the engine of one process, with the pool its role is budgeted for.

    API processes get a small pool and a short `pool_timeout`, so an exhausted pool fails fast
    (the API answers 503 + Retry-After) instead of stalling; a worker child holds one connection;
    tools connect, work and disconnect.
    """
    if settings.is_sqlite:
        return _sqlite_engine(settings.database_url)
    # No pre-ping: it would cost a round trip on every checkout. A connection that died with a
    # database restart fails its request with 503 + Retry-After once, and is replaced.
    options: dict[str, Any] = {"pool_recycle": 1800}
    if settings.pgbouncer:
        # PgBouncer's transaction mode hands each transaction to any server connection, so
        # statements psycopg prepared on one are missing on the next: never prepare.
        options["connect_args"] = {"prepare_threshold": None}
    if role == "api":
        options.update(
            pool_size=settings.api_pool_size,
            max_overflow=settings.api_pool_overflow,
            pool_timeout=settings.api_pool_timeout,
        )
    elif role == "worker":
        options.update(pool_size=1, max_overflow=0, pool_timeout=30)
    elif role == "events":
        # The events worker's threads each hold a connection only between two posts.
        options.update(pool_size=settings.webhook_workers, max_overflow=0, pool_timeout=30)
    else:
        options["poolclass"] = NullPool
    return create_engine(settings.database_url, **options)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the API read while the in-process worker writes; foreign keys are off by
        # default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def autocommit_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions whose statements each commit on their own, sharing the same pool.

    A unit of work that is one statement (an IdP's existence check; a user's create, whose
    resource row and journal row are one statement on PostgreSQL) then costs one round trip
    instead of three: no BEGIN, no COMMIT.
    """
    engine = sessions.kw["bind"]
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"),
                        expire_on_commit=False)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction, with database failures turned into the SCIM errors they mean.

    A unique index refusing a key (two concurrent writers) is the same 409 a check would have
    given; an exhausted pool or an unreachable database is a fast 503 with Retry-After, never
    a stalled request or a 500.
    """
    with database_errors(), sessions.begin() as session:
        yield session


def is_transient(error: BaseException) -> bool:
    """Whether a failure is the database's or the connection's, not one statement's data.

    Such a failure says nothing about the change being written: it is retried as a whole and
    no entry is charged an attempt for it. Anything else (a constraint, data the database
    refuses, a bug) belongs to the resource being written, and is isolated to it.
    """
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout | Unavailable):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


@contextmanager
def database_errors() -> Iterator[None]:
    """Database failures as the SCIM errors they mean (see `unit_of_work`)."""
    try:
        yield
    except IntegrityError:
        raise Uniqueness("A unique attribute value is already in use.") from None
    except PoolTimeout:
        raise Unavailable("All database connections are busy.", retry_after=1) from None
    except OperationalError:
        raise Unavailable("The database is unavailable.", retry_after=5) from None
