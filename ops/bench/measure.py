"""What the benchmark reads from PostgreSQL: convergence, apply rate, deprovision latency,
peak connections, correctness, and the raw batched-upsert baseline."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from scimflow.ops.bench.idp_requests import ENTERPRISE_SCHEMA, IdpRequests
from scimflow.ops.bench.plan import SyncPlan


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(_dsn(database_url), autocommit=True) as connection:
        return list(connection.execute(sql, params).fetchall())


def backlog(database_url: str) -> int:
    return int(query(database_url, "SELECT count(*) FROM journal WHERE status = 'pending'")[0][0])


class ConnectionPeak:
    """Polls pg_stat_activity for this database every 50 ms, keeping the maximum."""

    def __init__(self, database_url: str) -> None:
        self._dsn = _dsn(database_url)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ConnectionPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as connection:
            while not self._stop.wait(0.05):
                row = connection.execute(
                    "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()"
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)


def insert_sessions(database_url: str, tenant_id: str, user_id: str, count: int = 2) -> None:
    """Application sessions for a user, so deactivation has something to revoke."""
    with psycopg.connect(_dsn(database_url), autocommit=True) as connection:
        connection.cursor().executemany(
            "INSERT INTO user_sessions (id, tenant_id, user_id, created_at) VALUES (%s,%s,%s,%s)",
            [(uuid.uuid4().hex, tenant_id, user_id, datetime.now(UTC)) for _ in range(count)],
        )


@dataclass(frozen=True)
class ApplyFigures:
    users_applied: int
    apply_seconds: float
    deprovision_latencies: list[float]

    @property
    def users_per_second(self) -> float:
        return self.users_applied / self.apply_seconds if self.apply_seconds else 0.0


def apply_figures(database_url: str, tenant_id: str) -> ApplyFigures:
    first, last, count = query(
        database_url,
        "SELECT min(applied_at), max(applied_at), count(*) FROM journal WHERE tenant_id = %s "
        "AND resource_type = 'User' AND kind = 'create' AND status = 'applied'", tenant_id,
    )[0]
    latencies = [row[0] for row in query(
        database_url,
        "SELECT extract(epoch FROM applied_at - created_at) FROM journal "
        "WHERE tenant_id = %s AND lane = 0 AND status = 'applied'", tenant_id,
    )]
    seconds = (last - first).total_seconds() if first and last else 0.0
    return ApplyFigures(int(count), seconds, sorted(float(x) for x in latencies))


def correctness(database_url: str, tenant_id: str, plan: SyncPlan,
                expect: Expected) -> dict[str, Any]:
    """Nothing lost, nothing duplicated: the applied directory against the plan."""
    def one(sql: str, *params: Any) -> int:
        return int(query(database_url, sql, tenant_id, *params)[0][0])

    return {
        "users": one("SELECT count(*) FROM users WHERE tenant_id = %s"),
        "distinct_user_names": one(
            "SELECT count(DISTINCT lower(user_name)) FROM users WHERE tenant_id = %s"),
        "inactive_users": one("SELECT count(*) FROM users WHERE tenant_id = %s AND NOT active"),
        "groups": one("SELECT count(*) FROM groups WHERE tenant_id = %s"),
        "memberships": one("SELECT count(*) FROM memberships WHERE tenant_id = %s"),
        "live_sessions_of_inactive_users": one(
            "SELECT count(*) FROM user_sessions s JOIN users u ON u.tenant_id = s.tenant_id "
            "AND u.id = s.user_id WHERE s.tenant_id = %s AND NOT u.active "
            "AND s.revoked_at IS NULL"),
        "dead_letters": one("SELECT count(*) FROM dead_letters WHERE tenant_id = %s"),
        "users_with_manager": one(
            "SELECT count(*) FROM users WHERE tenant_id = %s "
            "AND (data -> %s -> 'manager' ->> 'value') IS NOT NULL", ENTERPRISE_SCHEMA),
        "users_with_password": one(
            "SELECT count(*) FROM users WHERE tenant_id = %s "
            "AND (data ->> 'password') IS NOT NULL"),
        "expected": {"users": plan.users, "groups": plan.groups,
                     "memberships": plan.groups * plan.members_per_group,
                     "inactive_users": len(plan.deactivated()),
                     "users_with_manager": plan.managed_users() if expect.managers else 0,
                     "users_with_password": plan.users if expect.passwords else 0},
    }


@dataclass(frozen=True)
class Expected:
    """What the IdP's bodies carry beyond the plan's users and groups."""

    managers: bool
    passwords: bool


def raw_upsert_rate(database_url: str, plan: SyncPlan, idp: IdpRequests,
                    batch: int = 500) -> float:
    """Rows/s of a raw batched upsert of the same user rows into a table shaped like `users`
    (same columns and unique indexes), with psycopg executemany and no ORM: the ceiling for
    writing these rows on this machine."""
    now = datetime.now(UTC)
    tenant = uuid.uuid4().hex
    bodies = (idp.user_body(plan, i, None) for i in range(plan.users))
    rows = [
        (tenant, uuid.uuid4().hex, body["userName"], body["externalId"], body["displayName"],
         True, json.dumps(body), 1, i, now, now)
        for i, body in enumerate(bodies)
    ]
    with psycopg.connect(_dsn(database_url)) as connection:
        for statement in _SCRATCH_TABLE:
            connection.execute(statement)
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            with connection.cursor() as cursor:
                cursor.executemany(_UPSERT, rows[start:start + batch])
            connection.commit()
        return len(rows) / (time.perf_counter() - started)


_SCRATCH_TABLE = (
    "CREATE TEMP TABLE bench_users (tenant_id text, id text, user_name text, external_id text, "
    "display_name text, active boolean, data json, version int, journal_seq bigint, "
    "created_at timestamptz, updated_at timestamptz, PRIMARY KEY (tenant_id, id))",
    "CREATE UNIQUE INDEX ON bench_users (tenant_id, lower(user_name))",
    "CREATE UNIQUE INDEX ON bench_users (tenant_id, external_id)",
)
_UPSERT = (
    "INSERT INTO bench_users VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (tenant_id, id) DO UPDATE SET user_name = excluded.user_name, "
    "external_id = excluded.external_id, display_name = excluded.display_name, "
    "active = excluded.active, data = excluded.data, version = excluded.version, "
    "journal_seq = excluded.journal_seq, updated_at = excluded.updated_at"
)


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 3)


def percentile_ms(values: list[float], fraction: float) -> float | None:
    seconds = percentile(values, fraction)
    return None if seconds is None else round(seconds * 1000, 1)
