"""Through PgBouncer (transaction mode) psycopg must never prepare statements."""

from __future__ import annotations

from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine
from tests.support.services import POSTGRES_URL, require_postgres


def test_pgbouncer_mode_connections_never_prepare() -> None:
    require_postgres()
    for pgbouncer, expected in ((True, None), (False, 5)):
        engine = make_engine(Settings(database_url=POSTGRES_URL, pgbouncer=pgbouncer), "api")
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert getattr(driver, "prepare_threshold", "missing") == expected
        engine.dispose()
