"""How fast the workers apply journaled creates, against a raw batched upsert of the same rows.

Each round, on a scratch PostgreSQL database migrated with the project's migrations:
- journals N Okta-shaped user creates (no password) through the real acceptance service
  (`WriteService`, batched creates on PostgreSQL), from several threads as the API would;
- drains them with the real `Drainer` from 2 OS processes at once (as 2 Celery prefork
  children would), each with its own engine, and times it from start to the last commit;
- upserts the very rows that landed in `users` into a copy of the table (same columns, same
  unique indexes) with psycopg `executemany`, batches of 500, `INSERT ... ON CONFLICT DO
  UPDATE`, one process: the database's own speed for these rows.

Prints users applied per second, raw rows per second and their ratio (medians over `--rounds`).
`--profile` drains one process under cProfile instead and prints the top functions by
cumulative and by total time, and the SQL statements sent per batch.

Usage: python benchmarks/apply.py [--users 20000] [--rounds 3] [--processes 2]
       [--batch-size N] [--profile] [--admin-database-url URL]
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import pstats
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing.synchronize import Barrier

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from scimflow.ops.bench.okta import Okta
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.stack import fresh_database
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import tenants
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import upgrade
from scimflow.workers.runtime import build_drainer as worker_drainer

JOURNAL_THREADS = 8
RAW_BATCH = 500
# The drain's own steps, whose callees `--profile` lists.
BATCH_STEPS = (r"\((drain_once|_apply|_write_all|ready_resources|pending_entries|_upsert"
               r"|mark_applied|_wake_waiting|_learn_references)\)")
RAW_COLUMNS = ("tenant_id", "id", "user_name", "user_name_key", "external_id", "display_name",
               "active", "data", "version", "journal_seq", "created_at", "updated_at")


class NoDoorbell:
    """The dispatcher port: nobody is rung, the benchmark drains by itself."""

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        return None


# Okta's create body without a password, as `scimflow bench` sends it.
OKTA = Okta(passwords=False)
PLAN = SyncPlan(0, 0, 0, 0, run_id="apply")


def journal_users(database_url: str, users: int) -> None:
    settings = Settings(database_url=database_url)
    sessions = make_sessions(make_engine(settings, "api"))
    with sessions.begin() as session:
        tenant = tenants.create_tenant(session, "bench", now=utc_now())
    writes = WriteService(sessions, default_protocol(), NoDoorbell())

    def create(index: int) -> None:
        body = OKTA.user_body(PLAN, index, None)
        writes.create(tenant, "User", body, request_id=f"bench-{index}")

    with ThreadPoolExecutor(JOURNAL_THREADS) as pool:
        list(pool.map(create, range(users)))


# --- draining ----------------------------------------------------------------------------------


def build_drainer(database_url: str, batch_size: int | None) -> tuple[Drainer, Engine]:
    """The worker's own drainer (tenant protocols, retry policy, password handling)."""
    settings = Settings(database_url=database_url)
    if batch_size:
        settings = replace(settings, drain_batch_size=batch_size)
    engine = make_engine(settings, "worker")
    return worker_drainer(settings, make_sessions(engine)), engine


def drain_all(drainer: Drainer) -> tuple[int, int]:
    """Drain until nothing is claimable; (entries applied, batches)."""
    applied = batches = 0
    while True:
        report = drainer.drain_once()
        if report.resources == 0:
            return applied, batches
        assert report.dead == 0 and report.postponed == 0, report
        applied += report.applied
        batches += 1


def drain_process(database_url: str, batch_size: int | None, start: Barrier,
                  results: multiprocessing.Queue[tuple[int, float]]) -> None:
    drainer, _ = build_drainer(database_url, batch_size)
    drainer.drain_once("no-such-tenant")  # connect and warm up before the clock starts
    start.wait()
    applied, _ = drain_all(drainer)
    results.put((applied, time.perf_counter()))


def timed_drain(database_url: str, processes: int, batch_size: int | None) -> tuple[int, float]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results: multiprocessing.Queue[tuple[int, float]] = context.Queue()
    workers = [context.Process(target=drain_process,
                               args=(database_url, batch_size, start, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    finished = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(applied for applied, _ in finished), max(end for _, end in finished) - began


# --- the raw baseline --------------------------------------------------------------------------


def raw_upsert(database_url: str) -> tuple[int, float]:
    """Upsert the applied users into an empty copy of `users`: (rows, seconds)."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    columns = ", ".join(RAW_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in RAW_COLUMNS[2:] if c != "created_at")
    placeholders = ", ".join(["%s"] * len(RAW_COLUMNS))
    statement = (f"INSERT INTO raw_users ({columns}) VALUES ({placeholders})"
                 f" ON CONFLICT (tenant_id, id) DO UPDATE SET {updates}")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS raw_users")
        connection.execute("CREATE TABLE raw_users (LIKE users INCLUDING ALL)")
        rows = [(*row[:7], Jsonb(row[7]), *row[8:])
                for row in connection.execute(f"SELECT {columns} FROM users ORDER BY journal_seq")]
        began = time.perf_counter()
        with connection.cursor() as cursor:
            for at in range(0, len(rows), RAW_BATCH):
                with connection.transaction():
                    cursor.executemany(statement, rows[at: at + RAW_BATCH])
        seconds = time.perf_counter() - began
        connection.execute("DROP TABLE raw_users")
    return len(rows), seconds


# --- runs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    applied_per_second: float
    raw_per_second: float

    @property
    def ratio(self) -> float:
        return self.applied_per_second / self.raw_per_second


def one_round(args: argparse.Namespace) -> Round:
    with fresh_database(args.admin_database_url) as database_url:
        upgrade(database_url)
        journal_users(database_url, args.users)
        applied, seconds = timed_drain(database_url, args.processes, args.batch_size)
        assert applied == args.users, (applied, args.users)
        rows, raw_seconds = raw_upsert(database_url)
    result = Round(applied / seconds, rows / raw_seconds)
    print(f"round: {result.applied_per_second:,.0f} users applied/s, "
          f"raw {result.raw_per_second:,.0f} rows/s, ratio {result.ratio:.3f}", flush=True)
    return result


def profile(args: argparse.Namespace) -> None:
    with fresh_database(args.admin_database_url) as database_url:
        upgrade(database_url)
        journal_users(database_url, args.users)
        drainer, engine = build_drainer(database_url, args.batch_size)
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        applied, batches = drain_all(drainer)
        profiler.disable()
        seconds = time.perf_counter() - began
    print(f"one process (profiled): {applied} applied in {batches} batches, {seconds:.1f} s, "
          f"{applied / seconds:,.0f}/s; {len(sent) / max(batches, 1):.1f} statements per batch")
    stats = pstats.Stats(profiler)
    for order in ("cumulative", "tottime"):
        print(f"\n--- top functions by {order} time ---")
        stats.sort_stats(order).print_stats(25)
    print("\n--- where one batch goes ---")
    stats.sort_stats("cumulative").print_callees(BATCH_STEPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="the Drainer's batch (default: the SCIMFLOW_DRAIN_BATCH_SIZE one)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--admin-database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.profile:
        profile(args)
        return
    rounds = [one_round(args) for _ in range(args.rounds)]
    applied = statistics.median(r.applied_per_second for r in rounds)
    raw = statistics.median(r.raw_per_second for r in rounds)
    ratio = statistics.median(r.ratio for r in rounds)
    print(f"median of {len(rounds)}: {applied:,.0f} users applied/s ({args.processes} processes), "
          f"raw batched upsert {raw:,.0f} rows/s, ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
