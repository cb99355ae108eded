"""Schema migrations (Alembic): applied only by `scimflow migrate`, checked by everything else.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from scimflow.pipeline.store.db import masked_url, sqlite_file

MIGRATE_COMMAND = "scimflow migrate"
# Alembic's own table (its default name): one row, the schema's revision.
VERSION_TABLE = "alembic_version"


class SchemaNotCurrent(Exception):
    """The database's schema is missing or behind this version of scimflow."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "scimflow.pipeline.store:migrations")
    # Alembic's config interpolates `%`; an escaped password (`p%40ss`) must reach it doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> list[str]:
    """Bring the database schema up to `revision`; return the revisions applied, oldest first."""
    before = schema_state(database_url).current
    command.upgrade(alembic_config(database_url), revision)
    after = schema_state(database_url).current
    return revisions_between(database_url, before, after)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def schema_state(database_url: str) -> SchemaState:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None  # the package ships its migrations
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return SchemaState(current, head)


def head_revision() -> str:
    """The revision this scimflow's schema is at when current (read from its own scripts)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's schema revision (None: no scimflow schema). Read directly, not through
    Alembic's migration context, which logs two lines each time (a readiness probe's rate)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if revision is None else str(revision)


def revisions_between(database_url: str, older: str | None, newer: str | None) -> list[str]:
    if newer is None or older == newer:
        return []
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    walked = scripts.iterate_revisions(newer, older or "base")
    return [script.revision for script in reversed(list(walked))]


def require_current(database_url: str) -> None:
    """Refuse a database that is missing or whose schema is behind: only `migrate` changes it.

    A SQLite file that does not exist is reported before connecting, which would create an empty
    one (a relative path names a different file in every working directory).
    """
    missing = _missing_sqlite_file(database_url)
    if missing is not None:
        raise SchemaNotCurrent(
            f"no database at {missing}: run `{MIGRATE_COMMAND}` to create it"
            " (a relative SQLite path is relative to the current directory)"
        )
    state = schema_state(database_url)
    if state.up_to_date:
        return
    where = masked_url(database_url)
    if state.current is not None and not _known(database_url, state.current):
        raise SchemaNotCurrent(
            f"the database {where} is at revision {state.current}, newer than this scimflow"
            f" ({state.head}): run the scimflow version that migrated it"
        )
    found = f"is at revision {state.current}" if state.current else "has no scimflow schema"
    raise SchemaNotCurrent(
        f"the database {where} {found}, this scimflow needs {state.head}:"
        f" run `{MIGRATE_COMMAND}`"
    )


def _known(database_url: str, revision: str) -> bool:
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    return any(script.revision == revision for script in scripts.walk_revisions())


def _missing_sqlite_file(database_url: str) -> Path | None:
    path = sqlite_file(database_url)
    return None if path is None or path.exists() else path
