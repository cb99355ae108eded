"""The IdPs' reads keep their plans on a freshly loaded table, before and after ANALYZE.

An initial sync fills `resources` faster than autovacuum analyses it, and on a table without
statistics PostgreSQL once walked the displayName index for every userName probe, filtering
the whole tenant (152 existence checks per second at 20,000 users). These tests load a tenant
into a database migrated like production, with autovacuum off for the table so that nothing
analyses it behind the test's back, capture the statements the read and write services send
for the requests IdPs make, and check the plan of each: the custom plan (the values known)
and the generic plan psycopg's prepared statements settle on after five executions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.reads import ReadService, SearchQuery
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import acknowledged, migrate, tenants
from scimflow.pipeline.store.acknowledged import TABLE, new_row
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.tenants import TenantRef
from tests.support.services import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.postgres

USERS = 20_000
GROUPS = 200


@dataclass(frozen=True)
class Loaded:
    engine: Engine
    reads: ReadService
    tenant: TenantRef
    user_id: str
    group_id: str


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    require_postgres()
    admin = create_engine(POSTGRES_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"scimflow_plans_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(Settings(database_url=url), "api")
    try:
        migrate.upgrade(url)
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE resources SET (autovacuum_enabled = false)"))
        sessions = make_sessions(engine)
        with sessions.begin() as session:
            tenant = tenants.create_tenant(session, "acme", now=datetime.now(UTC))
        user_id, group_id = _load(engine, tenant.id)
        yield Loaded(engine, ReadService(sessions, default_protocol()), tenant, user_id, group_id)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _load(engine: Engine, tenant_id: str) -> tuple[str, str]:
    start = datetime.now(UTC)
    rows = [
        new_row(tenant_id, str(uuid.uuid4()), "User",
                {"userName": f"user{n}@example.com", "externalId": f"00u{n}"},
                now=start + timedelta(microseconds=n), create_digest="")
        for n in range(USERS)
    ]
    rows += [
        new_row(tenant_id, str(uuid.uuid4()), "Group",
                {"displayName": f"Group {n}", "externalId": f"00g{n}"},
                now=start + timedelta(microseconds=n), create_digest="")
        for n in range(GROUPS)
    ]
    with engine.begin() as connection:
        for offset in range(0, len(rows), 5000):
            connection.execute(insert(TABLE), rows[offset:offset + 5000])
    return str(rows[USERS // 2]["id"]), str(rows[-1]["id"])


# Each request an IdP makes, and the index its reads of `resources` must go through.
def _idp_requests(loaded: Loaded) -> list[tuple[str, str, Any]]:
    reads, tenant = loaded.reads, loaded.tenant

    def search(type_name: str, filter_text: str | None = None, **query: Any) -> Any:
        return lambda: reads.search(tenant, type_name, SearchQuery(filter=filter_text, **query))

    def conflict() -> Any:
        with make_sessions(loaded.engine).begin() as session:
            return acknowledged.find_conflict(
                session, tenant.id, "User", {"userName": "user7@example.com", "externalId": "x"}
            )

    return [
        ("existing userName", "uq_resources_user_name",
         search("User", 'userName eq "user123@example.com"')),
        ("missing userName", "uq_resources_user_name",
         search("User", 'userName eq "nobody@example.com"')),
        ("user externalId", "uq_resources_external_id", search("User", 'externalId eq "00u9"')),
        ("user id filter", "resources_pkey", search("User", f'id eq "{loaded.user_id}"')),
        ("group displayName", "uq_resources_display_name",
         search("Group", 'displayName eq "Group 5"', with_memberships=False)),
        ("group externalId", "uq_resources_external_id",
         search("Group", 'externalId eq "00g5"', with_memberships=False)),
        ("user by id", "resources_pkey",
         lambda: reads.get(tenant, "User", loaded.user_id)),
        ("users page", "ix_resources_listing", search("User", start_index=1, count=100)),
        ("groups page", "ix_resources_listing",
         search("Group", start_index=1, count=100, with_memberships=False)),
        ("PUT's unique-key check", "uq_resources_user_name uq_resources_external_id", conflict),
    ]


def _statements_of(engine: Engine, request: Any) -> list[tuple[str, dict[str, Any]]]:
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if re.search(r"\bFROM resources\b", statement):
            sent.append((statement, dict(parameters)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def _literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _plans(connection: Connection, statement: str, parameters: dict[str, Any]) -> list[Any]:
    """The custom plan (values bound) and the generic plan (PREPARE, values unknown)."""
    custom = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    numbered = re.sub(r"%\((\w+)\)s", number, statement)
    connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    connection.exec_driver_sql(f"PREPARE probe AS {numbered}")
    arguments = ", ".join(_literal(parameters[name]) for name in names)
    generic = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE probe({arguments})")
    connection.exec_driver_sql("DEALLOCATE probe")
    return [_decoded(custom.scalar_one()), _decoded(generic.scalar_one())]


def _decoded(plan: Any) -> Any:
    return json.loads(plan) if isinstance(plan, str) else plan


def _scans_of_resources(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if node.get("Relation Name") == "resources" or node.get("Node Type") == "Bitmap Index Scan":
        yield node
    for child in node.get("Plans", []):
        yield from _scans_of_resources(child)


def _check_plans(loaded: Loaded) -> None:
    for label, expected, request in _idp_requests(loaded):
        statements = _statements_of(loaded.engine, request)
        assert statements, label
        for statement, parameters in statements:
            with loaded.engine.connect() as connection:
                for plan in _plans(connection, statement, parameters):
                    scans = list(_scans_of_resources(plan[0]["Plan"]))
                    used = {scan.get("Index Name") for scan in scans} - {None}
                    kinds = {scan["Node Type"] for scan in scans}
                    assert used and used <= set(expected.split()), (label, scans)
                    assert "Seq Scan" not in kinds, (label, scans)


def _analysed(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE relname = 'resources'"
        )).scalar_one())


def test_each_idp_read_uses_its_own_index_before_the_table_is_analysed(loaded: Loaded) -> None:
    assert not _analysed(loaded.engine)
    _check_plans(loaded)


def test_each_idp_read_uses_its_own_index_after_analyze(loaded: Loaded) -> None:
    with loaded.engine.begin() as connection:
        connection.execute(text("ANALYZE resources"))
    assert _analysed(loaded.engine)
    _check_plans(loaded)


def test_the_load_is_analysed_sooner_than_postgresql_s_default(loaded: Loaded) -> None:
    with loaded.engine.connect() as connection:
        options = connection.execute(text(
            "SELECT reloptions FROM pg_class WHERE relname IN ('resources', 'journal')"
        )).scalars().all()
    for table_options in options:
        assert "autovacuum_analyze_scale_factor=0.02" in table_options
