"""Acknowledgement latency while retention prunes a large journal, on PostgreSQL.

Measures, in one run, on a scratch PostgreSQL database whose tenant's journal holds 100,000
applied entries older than the retention period (realistic Okta create commands):
- the baseline: `POST /Users` through the real Falcon app, called in-process over WSGI (no
  socket) from several threads, exactly the acceptance path of the API, for a fixed time with
  nothing else running;
- the same load while `scimflow.pipeline.store.retention.prune` deletes the 100,000 entries
  from another process (as a Celery worker would), from its first batch until none is left,
  pausing between batches as the scheduled run does (`--pause`, default the setting's;
  `--pause 0` shows an unpaced burst).

- the same load again, with nothing else running, once the pruning is over: its ratio to the
  baseline is the run's noise (the journal and the directory grew meanwhile), against which the
  pruning's ratio is read.

Prints each phase's acknowledgements per second and latency p50/p99, their ratios to the
baseline, and the pruning's throughput (rows deleted per second) and total time.
Usage: python benchmarks/retention.py [--entries 100000] [--threads 8] [--seconds 10]
       [--batch-size 1000] [--pause SECONDS] [--admin-database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

from falcon import testing
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scimflow.api.wsgi import build_app
from scimflow.ops.bench.stack import fresh_database
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import retention
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import upgrade
from scimflow.pipeline.store.retention import RetentionPolicy

OKTA_CREATE = (Path(__file__).resolve().parent.parent / "tests" / "samples" / "idp" / "okta"
               / "okta-create-user.json")
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
# Older than the default 7-day journal retention, spread over a day like a real backlog.
AGE = timedelta(days=30)

_FILL = text("""
INSERT INTO journal (tenant_id, resource_id, resource_type, kind, command, status, lane,
                     attempts, request_id, created_at, applied_at)
SELECT :tenant, gen_random_uuid()::text, 'User', 'create', CAST(:command AS json), 'applied', 1,
       0, 'bench-' || i, :applied - make_interval(secs => i * 0.864) - interval '50 ms',
       :applied - make_interval(secs => i * 0.864)
FROM generate_series(1, :entries) AS i
""")


class NoDoorbell:
    """No workers run: acknowledgement alone is measured."""

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        return None


@dataclass
class Phase:
    """The latencies of one phase's acknowledgements, and how long it ran."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Pruned:
    """What the pruner deleted, in how long, and how many applied entries it left."""

    deleted: int
    seconds: float
    applied_left: int = -1

    @property
    def rate(self) -> float:
        return self.deleted / self.seconds


# --- the database --------------------------------------------------------------------------


def bench_settings(database_url: str, threads: int) -> Settings:
    # The ack load leaves its creates pending (no workers): admission must not refuse them.
    return Settings(database_url=database_url, api_pool_size=threads,
                    tenant_backlog_limit=10_000_000, global_backlog_limit=10_000_000)


def fill_journal(database_url: str, tenant_id: str, entries: int) -> None:
    """`entries` applied entries of the tenant, applied 30-31 days ago, then VACUUM ANALYZE."""
    body = json.loads(OKTA_CREATE.read_text("utf-8"))
    command = default_protocol().validate_create("User", "u", body).to_json()
    engine = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(_FILL, {"tenant": tenant_id, "command": json.dumps(command),
                                   "applied": utc_now() - AGE, "entries": entries})
        connection.execute(text("VACUUM ANALYZE journal"))
    engine.dispose()


def count_applied(database_url: str) -> int:
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        found = connection.scalar(text("SELECT count(*) FROM journal WHERE status = 'applied'"))
    engine.dispose()
    return int(found or 0)


# --- the acknowledgement load --------------------------------------------------------------


def poster(app: Any, token: str, prefix: str) -> Callable[[int], bool]:
    """POST /Users of a fresh user through the WSGI app, in-process; True on 201."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    body = json.loads(OKTA_CREATE.read_text("utf-8"))
    body.pop("password", None)  # hashing is measured elsewhere (benchmarks/validation.py)

    def post(index: int) -> bool:
        user = {**body, "userName": f"{prefix}{index}@example.com",
                "externalId": f"{prefix}{index}", "schemas": [USER_SCHEMA]}
        environ = testing.create_environ(path="/scim/v2/Users", method="POST", headers=headers,
                                         body=json.dumps(user))
        status: list[str] = []
        b"".join(app(environ, lambda s, _h: status.append(s)))
        return status[0].startswith("201")

    return post


def run_load(post_from: Callable[[str], Callable[[int], bool]], threads: int,
             running: Callable[[], bool], label: str) -> Phase:
    """`threads` closed-loop clients POSTing while `running()`; every latency is kept."""
    phase = Phase()
    lock = threading.Lock()

    def client(number: int) -> None:
        post, mine, failures = post_from(f"{label}-{number}-"), [], 0
        for index in _while(running):
            started = time.perf_counter()
            ok = post(index)
            mine.append(time.perf_counter() - started)
            failures += not ok
        with lock:
            phase.latencies.extend(mine)
            phase.failures += failures

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    phase.seconds = time.perf_counter() - started
    return phase


def _while(running: Callable[[], bool]) -> Iterator[int]:
    index = 0
    while running():
        yield index
        index += 1


def for_seconds(seconds: float) -> Callable[[], bool]:
    deadline = time.perf_counter() + seconds
    return lambda: time.perf_counter() < deadline


# --- the pruner, in a process of its own -----------------------------------------------------


def prune_process(database_url: str, policy: RetentionPolicy, ready: ProcessEvent,
                  go: ProcessEvent, results: Any) -> None:
    """Connect, say ready, wait for the load to run, then prune until nothing is left."""
    engine = make_engine(Settings(database_url=database_url), "worker")
    sessions = make_sessions(engine)
    with engine.connect():
        pass  # the connection is made before the clock starts
    ready.set()
    go.wait()
    started = time.perf_counter()
    report = retention.prune(sessions, policy, now=utc_now(),
                             max_batches=None)
    results.put((report.journal, time.perf_counter() - started))
    engine.dispose()


def while_pruning(post_from: Callable[[str], Callable[[int], bool]], args: argparse.Namespace,
                  database_url: str) -> tuple[Phase, Pruned]:
    """The load from the pruner's first batch to its last, and what the pruner did."""
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Event(), context.Event(), context.Queue()
    pruner = context.Process(target=prune_process,
                             args=(database_url, RetentionPolicy(batch_size=args.batch_size,
                                                                 pause_seconds=args.pause),
                                   ready, go, results))
    pruner.start()
    ready.wait()
    done = threading.Event()

    def pruning() -> None:
        go.set()
        pruner.join()
        done.set()

    threading.Thread(target=pruning).start()
    phase = run_load(post_from, args.threads, lambda: not done.is_set(), "pruning")
    deleted, seconds = results.get()
    return phase, Pruned(deleted, seconds)


# --- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="the baseline's duration")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--pause", type=float, default=Settings().retention_pause_seconds,
                        help="seconds between two batches (the scheduled run's pause)")
    parser.add_argument("--admin-database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args()
    with fresh_database(args.admin_database_url) as database_url:
        upgrade(database_url)
        settings = bench_settings(database_url, args.threads)
        issued = Tenancy(make_sessions(make_engine(settings, "tool"))).create("bench")
        fill_journal(database_url, issued.tenant.id, args.entries)
        app = build_app(settings, NoDoorbell())

        def post_from(prefix: str) -> Callable[[int], bool]:
            return poster(app, issued.secret, prefix)

        run_load(post_from, args.threads, for_seconds(2.0), "warmup")
        baseline = run_load(post_from, args.threads, for_seconds(args.seconds), "baseline")
        pruning, pruned = while_pruning(post_from, args, database_url)
        pruned = replace(pruned, applied_left=count_applied(database_url))
        after = run_load(post_from, args.threads, for_seconds(args.seconds), "after")
    summary = summarise(args, {"baseline": baseline, "while_pruning": pruning, "after": after},
                        pruned)
    print(json.dumps(summary) if args.json else "\n".join(text_lines(args, summary)))


PHASES = ("baseline", "while_pruning", "after")


def summarise(args: argparse.Namespace, phases: dict[str, Phase],
              pruned: Pruned) -> dict[str, Any]:
    summary: dict[str, Any] = {
        name: {"requests": len(phase.latencies), "failures": phase.failures,
               "seconds": round(phase.seconds, 2), "acks_per_s": round(phase.rate, 1),
               "p50_ms": round(phase.percentile(0.50) * 1000, 2),
               "p99_ms": round(phase.percentile(0.99) * 1000, 2)}
        for name, phase in phases.items()
    }
    summary["ratio"] = {key: round(summary["while_pruning"][key] / summary["baseline"][key], 3)
                        for key in ("acks_per_s", "p50_ms", "p99_ms")}
    summary["noise"] = {key: round(summary["after"][key] / summary["baseline"][key], 3)
                        for key in ("acks_per_s", "p50_ms", "p99_ms")}
    summary["prune"] = {"entries": args.entries, "deleted": pruned.deleted,
                        "applied_left": pruned.applied_left, "seconds": round(pruned.seconds, 2),
                        "rows_per_s": round(pruned.rate), "batch_size": args.batch_size,
                        "pause_seconds": args.pause}
    return summary


def text_lines(args: argparse.Namespace, summary: dict[str, Any]) -> list[str]:
    lines = [f"{args.threads} threads POSTing /Users in-process; journal: {args.entries:,} "
             "applied entries older than the retention period",
             f"{'phase':<28} {'requests':>9} {'acks/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'non-201':>8}"]
    for name in PHASES:
        row = summary[name]
        lines.append(f"{name:<28} {row['requests']:>9,} {row['acks_per_s']:>9,.1f} "
                     f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['failures']:>8}")
    prune = summary["prune"]
    for label, key in (("ratio (pruning / baseline)", "ratio"),
                       ("noise (after / baseline)", "noise")):
        ratio = summary[key]
        lines.append(f"{label:<28} {'':>9} {ratio['acks_per_s']:>8.3f}x "
                     f"{ratio['p50_ms']:>7.3f}x {ratio['p99_ms']:>7.3f}x")
    lines.append(f"pruned {prune['deleted']:,} of {args.entries:,} entries "
                 f"({prune['applied_left']:,} applied left) in {prune['seconds']:.2f} s: "
                 f"{prune['rows_per_s']:,} rows/s, batches of {args.batch_size}, "
                 f"{args.pause:g} s apart")
    return lines


if __name__ == "__main__":
    main()
