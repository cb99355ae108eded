"""The Alembic migrations create exactly the schema the models describe, and go back down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from scimflow.pipeline.store.migrate import downgrade, upgrade
from scimflow.pipeline.store.models import Base
from tests.support.services import require_postgres
from tests.system.stack import postgres_database


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    require_postgres()
    with postgres_database() as url:
        yield url


def test_migrations_match_the_models_on_postgres(empty_postgres: str) -> None:
    """`upgrade head` on an empty database leaves no difference to the models."""
    upgrade(empty_postgres)
    engine = create_engine(empty_postgres, poolclass=NullPool)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_migrations_downgrade_to_nothing_and_up_again(empty_postgres: str) -> None:
    upgrade(empty_postgres)
    downgrade(empty_postgres, "base")
    engine = create_engine(empty_postgres, poolclass=NullPool)
    assert inspect(engine).get_table_names() == ["alembic_version"]
    upgrade(empty_postgres)
    assert "journal" in inspect(engine).get_table_names()
    engine.dispose()


def test_migrations_run_on_the_embedded_sqlite_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/scimflow.sqlite3"
    upgrade(url)
    upgrade(url)  # idempotent: `scimflow serve` runs it on every start
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"tenants", "resources", "journal", "users", "groups", "memberships"} <= tables


def test_folded_keys_are_backfilled_and_old_collisions_keep_their_old_key(tmp_path: object) -> None:
    """0007 recomputes every key with `fold_key`; of two rows the new rule folds alike (SQLite's
    `lower()` folded ASCII only), the newer gets a key of its own."""
    url = f"sqlite:///{tmp_path}/scimflow.sqlite3"
    upgrade(url, "0006")
    engine = create_engine(url)
    now = "2024-01-01 00:00:00"
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tenants VALUES ('t', 'acme', :now)"), {"now": now})
        for index, name in enumerate(["ΟΔΟΣ", "οδοσ", "Ann"]):
            connection.execute(
                text("INSERT INTO users (tenant_id, id, user_name, active, data, version, "
                     "journal_seq, created_at, updated_at) "
                     "VALUES ('t', :id, :name, 1, '{}', 1, 1, :at, :at)"),
                {"id": f"u{index}", "name": name, "at": f"2024-01-01 00:00:0{index}"},
            )
    upgrade(url)
    with engine.connect() as connection:
        keys = dict(connection.execute(text("SELECT id, user_name_key FROM users")).all())
    assert keys == {"u0": "οδοσ", "u1": "οδοσ#u1", "u2": "ann"}
    downgrade(url, "0006")
    engine.dispose()
