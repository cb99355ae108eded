"""Fixtures for tests against real databases: SQLite and PostgreSQL, no mocked store.

Every test that asks for `services` (or `db_engine`) runs twice, once per database:

* SQLite: a fresh file in the test's tmp directory, schema created with `create_all`.
* PostgreSQL (`SCIMFLOW_TEST_POSTGRES_URL`, by default the CI server on 127.0.0.1:5432): one
  schema private to this test session, created once and dropped at the end; every table is
  emptied with one TRUNCATE before each test, which is much faster than re-creating it.
  When the server does not answer, the PostgreSQL half is skipped, except under `CI=true`,
  where an unreachable database is a failure rather than a silent skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema, DropSchema

from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer
from scimflow.pipeline.services.reads import ReadService
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import tenants
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import alembic_config
from scimflow.pipeline.store.models import Base
from scimflow.pipeline.store.tenants import TenantRef
from tests.support.cli import Cli, cli_in
from tests.support.services import POSTGRES_URL, require_postgres

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
# Writes are stamped by a clock that ticks one second per call, starting here.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


# --- Databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a schema created for this test session alone."""
    require_postgres()
    schema = f"scimflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(CreateSchema(schema))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    schema_engine = create_engine(rendered, poolclass=NullPool)
    Base.metadata.create_all(schema_engine)
    schema_engine.dispose()
    try:
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(DropSchema(schema, cascade=True))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database a test runs against, once per supported database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scimflow.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine built as the API builds its own, over an empty schema."""
    settings = Settings(database_url=database_url)
    engine = make_engine(settings, "api")
    if settings.is_sqlite:
        Base.metadata.create_all(engine)
    else:
        _empty_every_table(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _empty_every_table(engine: Engine) -> None:
    # DDL over the schema's own table names, quoted by the dialect: nothing user-supplied.
    quote = engine.dialect.identifier_preparer.quote
    names = ", ".join(quote(table.name) for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        # The one row the schema starts with (pipeline/store/event_tables.py).
        connection.execute(text("INSERT INTO event_positions (name, last) VALUES ('outbox', 0)"))


@pytest.fixture
def statements(db_engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the engine sends from now on (`before_cursor_execute`)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(db_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db_engine, "before_cursor_execute", record)


# --- Services --------------------------------------------------------------------------------


@dataclass
class RecordingDispatcher:
    """The doorbell port (`pipeline.ports.Dispatcher`), remembering every ring."""

    rings: list[tuple[str, bool]] = field(default_factory=list)

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self.rings.append((tenant_id, urgent))


@dataclass
class TickingClock:
    """Each reading is one second after the previous one, so writes order deterministically."""

    now: datetime = EPOCH

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


@dataclass
class Services:
    """The write path, the read path and a worker over one database, plus shortcuts."""

    sessions: sessionmaker[Session]
    writes: WriteService
    reads: ReadService
    drainer: Drainer
    dispatcher: RecordingDispatcher

    def tenant(self, name: str) -> TenantRef:
        with self.sessions.begin() as session:
            return tenants.create_tenant(session, name, now=utc_now())

    def reader(self, *, max_results: int) -> ReadService:
        return ReadService(self.sessions, default_protocol(), max_results=max_results)

    def user(self, tenant: TenantRef, user_name: str, **attributes: Any) -> str:
        """POST /Users; returns the new id. No worker has applied it yet."""
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
        return self.writes.create(tenant, "User", body, request_id="test").resource.id

    def group(self, tenant: TenantRef, display_name: str, members: list[str] | None = None) -> str:
        """POST /Groups with these member ids; returns the new id."""
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
        if members:
            body["members"] = [{"value": member} for member in members]
        return self.writes.create(tenant, "Group", body, request_id="test").resource.id

    def drain(self) -> None:
        """Apply every acknowledged write, as the workers would."""
        report = self.drainer.drain()
        assert report.dead == 0 and report.postponed == 0, report


@pytest.fixture
def services(db_engine: Engine) -> Services:
    sessions = make_sessions(db_engine)
    dispatcher = RecordingDispatcher()
    return Services(
        sessions=sessions,
        writes=WriteService(sessions, default_protocol(), dispatcher, clock=TickingClock()),
        reads=ReadService(sessions, default_protocol()),
        drainer=Drainer(sessions, default_protocol()),
        dispatcher=dispatcher,
    )


def stamp_schema(database_url: str, revision: str = "head") -> None:
    """The test schema comes from the models (which equal the migrations' head, as
    test_migrations checks) with no record of its revision; what refuses a schema it cannot tell
    is current (the CLI, readiness) needs it recorded, as `scimflow migrate` would have."""
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.begin() as connection:
        MigrationContext.configure(connection).stamp(scripts, revision)
    engine.dispose()


@pytest.fixture
def cli(services: Services, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI in-process over the test database (emptied by `services`); modules that run it
    without the database define their own."""
    stamp_schema(database_url)
    run = cli_in(tmp_path, monkeypatch, capsys)
    monkeypatch.setenv("SCIMFLOW_DATABASE_URL", database_url)
    return run
