"""The operator view's read model under an acknowledgement load, and what its indexes cost.

On a scratch PostgreSQL database whose tenant's journal holds `--entries` applied entries
(Okta creates, 1 in 50 a deprovisioning), `--threads` clients POST /Users through the real
Falcon app in-process (as benchmarks/retention.py does), in alternating phases of
`--seconds` each:
- `with indexes` / `without indexes`: the load with migration 0015's two journal indexes
  (`ix_journal_tenant_created`, `ix_journal_tenant_applied`) and with them dropped, twice each,
  alternately: the ratio of the acknowledgement rates is what the indexes cost a sync;
- then, the indexes in place, `unpolled` and `polled` alternately, twice each: `polled` is the
  load while one operator, in a process of its own, reads `Operations.tenant()` and the first
  page of `Operations.directory()` every `--poll-interval` seconds (the console's tenant
  page): its ratio to `unpolled` is what the polling costs, and the latencies of those reads
  (p50, p99) are the page's answer time under a sync.
Phases compared with each other alternate (`--rounds` times), so the growing tables weigh on
each alike, and no DDL runs between them.
Three directory searches are timed at the end. No worker drains: the backlog grows all along.

Usage: python benchmarks/operator_view.py [--entries 20000] [--threads 8] [--seconds 8]
       [--poll-interval 2] [--rounds 2] [--admin-database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from retention import NoDoorbell, Phase, bench_settings, fill_journal, for_seconds, poster, run_load
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scimflow.api.wsgi import build_app
from scimflow.ops.bench.stack import fresh_database
from scimflow.pipeline.services.operations import Operations
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import PasswordPolicy, Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import upgrade

IGNORE = PasswordPolicy("ignore")

INDEXES = {
    "ix_journal_tenant_created": "journal (tenant_id, created_at)",
    "ix_journal_tenant_applied": "journal (tenant_id, lane, applied_at)",
}


def set_indexes(database_url: str, present: bool) -> None:
    engine = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for name, target in INDEXES.items():
            # Fixed names and columns from this script: nothing user-supplied in the DDL.
            statement = (f"CREATE INDEX IF NOT EXISTS {name} ON {target}" if present
                         else f"DROP INDEX IF EXISTS {name}")
            connection.execute(text(statement))
        connection.execute(text("ANALYZE journal"))
    engine.dispose()


def deprovisioning_share(database_url: str) -> None:
    """1 in 50 of the filled entries in the deprovisioning lane (their latency is shown)."""
    engine = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("UPDATE journal SET lane = 0 WHERE seq % 50 = 0"))
        connection.execute(text("VACUUM ANALYZE journal"))
    engine.dispose()


def poll_process(database_url: str, interval: float, ready: ProcessEvent, stop: ProcessEvent,
                 results: Any) -> None:
    """An operator's tenant page, in a process of its own (as `scimflow console` is): the
    tenant's figures and the first page of its directory, every `interval` seconds until
    told to stop."""
    operations = Operations(make_sessions(make_engine(Settings(database_url=database_url),
                                                      "tool")), NoDoorbell())
    operations.tenants()  # connected and warm before the clock starts
    ready.set()
    latencies: list[float] = []
    cpu_started = time.process_time()
    while not stop.is_set():
        started = time.perf_counter()
        operations.tenant("bench")
        operations.directory("bench", limit=50)
        latencies.append(time.perf_counter() - started)
        stop.wait(interval)
    results.put((latencies, time.process_time() - cpu_started))


def polled_phase(post_from: Callable[[str], Callable[[int], bool]], args: argparse.Namespace,
                 database_url: str) -> tuple[Phase, list[float], float]:
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    poller = context.Process(target=poll_process,
                             args=(database_url, args.poll_interval, ready, stop, results))
    poller.start()
    ready.wait()
    phase = run_load(post_from, args.threads, for_seconds(args.seconds), "polled")
    stop.set()
    latencies, cpu_seconds = results.get()
    poller.join()
    return phase, latencies, cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of the three phases, alternated")
    parser.add_argument("--admin-database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with fresh_database(args.admin_database_url) as database_url:
        upgrade(database_url)
        # The posted users carry no password: no key is needed to seal one.
        settings = replace(bench_settings(database_url, args.threads), password_policy=IGNORE)
        sessions = make_sessions(make_engine(settings, "tool"))
        issued = Tenancy(sessions).create("bench")
        fill_journal(database_url, issued.tenant.id, args.entries)
        deprovisioning_share(database_url)
        app = build_app(settings, NoDoorbell())
        operations = Operations(sessions, NoDoorbell())

        def post_from(prefix: str) -> Callable[[int], bool]:
            return poster(app, issued.secret, prefix)

        run_load(post_from, args.threads, for_seconds(2.0), "warmup")
        phases: dict[str, list[Phase]] = {"with indexes": [], "without indexes": [],
                                          "unpolled": [], "polled": []}
        # The indexes' cost first, then the polling's with the indexes in place: no DDL
        # between two phases that are compared with each other.
        for round_ in range(args.rounds):
            for label in ("with indexes", "without indexes"):
                set_indexes(database_url, label == "with indexes")
                phases[label].append(run_load(post_from, args.threads,
                                              for_seconds(args.seconds), f"{label}{round_}"))
        set_indexes(database_url, True)
        run_load(post_from, args.threads, for_seconds(2.0), "settle")
        reads: list[float] = []
        poller_cpu = 0.0
        for round_ in range(args.rounds):
            phases["unpolled"].append(run_load(post_from, args.threads,
                                               for_seconds(args.seconds), f"unpolled{round_}"))
            polled, latencies, cpu_seconds = polled_phase(post_from, args, database_url)
            phases["polled"].append(polled)
            reads.extend(latencies)
            poller_cpu += cpu_seconds
        directory_ms = {query: _timed(lambda q=query: operations.directory("bench", q))
                        for query in SEARCHES}
    summary = summarise(phases, reads, directory_ms)
    summary["poller_cpu_ms_per_read"] = round(poller_cpu / max(1, len(reads)) * 1000, 1)
    print(json.dumps(summary) if args.json else "\n".join(text_lines(args, summary)))


# A query matching nothing (every key read), one matching a sixth of the users (sorted by
# name), and an email's start (the JSON of every resource read).
SEARCHES = ("nobody", "polled", "polled0-1-1@")


def _timed(read: Callable[[], object]) -> float:
    started = time.perf_counter()
    read()
    return round((time.perf_counter() - started) * 1000, 1)


def _rate(phases: list[Phase]) -> float:
    return sum(len(p.latencies) for p in phases) / sum(p.seconds for p in phases)


def _ms(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)


def summarise(phases: dict[str, list[Phase]], reads: list[float],
              directory_ms: dict[str, float]) -> dict[str, Any]:
    with_rate, without_rate = _rate(phases["with indexes"]), _rate(phases["without indexes"])
    polled_rate, unpolled_rate = _rate(phases["polled"]), _rate(phases["unpolled"])
    return {
        "acks_per_s": {"with_indexes": round(with_rate, 1),
                       "without_indexes": round(without_rate, 1),
                       "unpolled": round(unpolled_rate, 1), "polled": round(polled_rate, 1)},
        "index_cost_ratio": round(with_rate / without_rate, 3),
        "polling_cost_ratio": round(polled_rate / unpolled_rate, 3),
        "tenant_page_reads": len(reads),
        "tenant_page_p50_ms": _ms(reads, 0.50),
        "tenant_page_p99_ms": _ms(reads, 0.99),
        "directory_ms": directory_ms,
        "failures": sum(p.failures for group in phases.values() for p in group),
    }


def text_lines(args: argparse.Namespace, summary: dict[str, Any]) -> list[str]:
    acks = summary["acks_per_s"]
    return [
        f"{args.threads} threads POSTing /Users in-process; journal: {args.entries:,} applied "
        "entries before the load",
        f"acks/s with the 0015 journal indexes {acks['with_indexes']:,.1f}, without "
        f"{acks['without_indexes']:,.1f}: ratio {summary['index_cost_ratio']:.3f}x",
        f"acks/s while the tenant page is read every {args.poll_interval:g} s "
        f"{acks['polled']:,.1f}, alternated phases without it {acks['unpolled']:,.1f}: "
        f"ratio {summary['polling_cost_ratio']:.3f}x",
        f"tenant() + directory() under the load: {summary['tenant_page_reads']} reads, p50 "
        f"{summary['tenant_page_p50_ms']} ms, p99 {summary['tenant_page_p99_ms']} ms",
        f"the page's own CPU (its process, not PostgreSQL's): "
        f"{summary['poller_cpu_ms_per_read']} ms per read",
        "directory searches after the load: " + ", ".join(
            f"{query!r} {ms} ms" for query, ms in summary["directory_ms"].items()),
        f"non-201 answers: {summary['failures']}",
    ]


if __name__ == "__main__":
    main()
