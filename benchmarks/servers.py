"""API servers side by side: the bare Falcon baseline and the real API under each candidate.

For each candidate server, in one run on one machine, with 2 API processes as in production:
- the bare Falcon app (`ops/bench/baseline_app.py`; for the ASGI upper bounds, the same endpoint
  as a Falcon ASGI app defined here) driven with `POST /Users` bodies and with existence GETs;
- the real scimflow API (`scimflow api` with `SCIMFLOW_API_SERVER`) on a scratch PostgreSQL
  database and Redis, no Celery workers (its doorbells just queue), driven with the same
  requests: `POST /Users` of unique users, then `GET /Users?filter=userName eq "…"` of users
  that do not exist (the check an IdP makes before each create in an initial sync);
- a keep-alive check on the bare app: open many connections, send one request on each, leave
  them idle, then reuse each once; counts the connections served at all, those the server
  closed while idle, and the transport errors on reuse, and times a fresh client's requests
  while the idle connections are held (can idle connections starve other tenants?).

Every load is the project's asyncio generator (`ops/bench/load.py`) at the same concurrency,
each virtual user on one keep-alive connection. Printed per candidate: requests/s, p50/p99,
the API's CPU per request (user + system time of the server's whole process tree, from /proc),
and the ratio of the real API to the bare app on the same server. Candidates: `gunicorn`
(gthread with the request-buffering worker, as `scimflow api` runs it), `uwsgi`,
`granian[:threads]` (WSGI), and, as upper bounds with no real-API figures, `granian-asgi` and
`uvicorn` serving the bare app over ASGI.

Usage (under the shared benchmark lock):
  .venv/bin/python benchmarks/servers.py [--requests 4000]
      [--concurrency 64] [--servers gunicorn,uwsgi,granian:8,granian-asgi,uvicorn]
      [--idle-connections 300] [--idle-seconds 35 (0: no keep-alive check)]
      [--broker-url redis://127.0.0.1:6379/5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import falcon
import falcon.asgi
import redis

from scimflow.ops.bench.http import Connection
from scimflow.ops.bench.load import Driver, Tally, run_closed_loop
from scimflow.ops.bench.okta import Okta
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.stack import BIN, Processes, free_port, fresh_database, wait_http
from scimflow.ops.processes import granian_argv, gunicorn_argv, uwsgi_argv
from scimflow.pipeline.settings import ApiServer, Settings

HERE = Path(__file__).resolve().parent
BASELINE_APP = "scimflow.ops.bench.baseline_app:app"
USERS_PATH = "/scim/v2/Users"
WARMUP_REQUESTS = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the bare endpoint over ASGI, for the upper bounds --------------------------------------

class AsgiParseOnly:
    """ops/bench/baseline_app.py's endpoint, as a Falcon ASGI resource."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await req.get_media()
        resp.status = falcon.HTTP_201
        resp.media = {"id": "baseline", "userName": body.get("userName")}

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"totalResults": 0, "Resources": []}


asgi_app = falcon.asgi.App()
asgi_app.req_options.media_handlers["application/scim+json"] = falcon.media.JSONHandler()
asgi_app.add_route(USERS_PATH, AsgiParseOnly())


# --- candidates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    name: str
    bare: Callable[[str], list[str]]  # bind -> argv serving the bare app
    api_server: ApiServer | None = None  # None: an upper bound, no real-API figures
    threads: int | None = None


def candidate(spec: str, processes: int, settings: Settings) -> Candidate:
    name, _, threads_text = spec.partition(":")
    threads = int(threads_text) if threads_text else None
    if name == "gunicorn":
        t = threads or settings.api_threads
        return Candidate(spec, lambda bind: gunicorn_argv(
            BASELINE_APP, bind, processes, t, settings.api_worker_connections),
            ApiServer.GUNICORN, t)
    if name == "uwsgi":
        t = threads or settings.api_worker_connections
        return Candidate(spec, lambda bind: uwsgi_argv(BASELINE_APP, bind, processes, t),
                         ApiServer.UWSGI, t)
    if name == "granian":
        t = threads or settings.api_threads
        return Candidate(spec, lambda bind: granian_argv(BASELINE_APP, bind, processes, t),
                         ApiServer.GRANIAN, t)
    if name == "granian-asgi":
        return Candidate(spec, lambda bind: _granian_asgi(bind, processes))
    if name == "uvicorn":
        return Candidate(spec, lambda bind: _uvicorn(bind, processes))
    raise SystemExit(f"unknown server {spec!r}")


def _granian_asgi(bind: str, processes: int) -> list[str]:
    host, _, port = bind.rpartition(":")
    return [str(BIN / "granian"), "--interface", "asgi", "--host", host, "--port", port,
            "--workers", str(processes), "--http", "1", "--no-ws", "--loop", "uvloop",
            "--http1-header-read-timeout", "60000", "--working-dir", str(HERE),
            "servers:asgi_app"]


def _uvicorn(bind: str, processes: int) -> list[str]:
    host, _, port = bind.rpartition(":")
    return [sys.executable, "-m", "uvicorn", "--host", host, "--port", port,
            "--workers", str(processes), "--app-dir", str(HERE), "--no-access-log",
            "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
            "--timeout-keep-alive", "60", "servers:asgi_app"]


# --- CPU of a process tree ------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()  # the fields after the command name


def process_tree(root: int) -> list[int]:
    """The root and all its descendants, from the parent ids in /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in parents.get(pid, [])]
        tree.extend(frontier)
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of the root's process tree, its threads included."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


# --- load -----------------------------------------------------------------------------------

@dataclass
class Figures:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float
    generator_cpu_us: float
    failures: int
    throttled: int


def drive(port: int, token: str, requests: list[tuple[str, str, Any]], *, concurrency: int,
          server_pid: int, expect: tuple[int, ...]) -> Figures:
    """Send `requests` (method, path, body) at `concurrency`; figures of the whole load."""
    tally = Tally()
    driver = Driver(tally)

    async def one(connection: Any, request: tuple[str, str, Any]) -> None:
        method, path, body = request
        await driver.send(connection, method, method, path, body=body, expect=expect)

    async def everything() -> None:
        await run_closed_loop(connector(port, token), concurrency, requests, one)

    cpu_before, generator_before = tree_cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    asyncio.run(everything())
    wall = time.perf_counter() - started
    server_cpu = tree_cpu_seconds(server_pid) - cpu_before
    generator_cpu = time.process_time() - generator_before
    latencies = sorted(x for values in tally.latencies.values() for x in values)
    count = len(latencies) or 1
    return Figures(
        requests_per_s=len(latencies) / wall, p50_ms=latencies[count // 2] * 1000,
        p99_ms=latencies[min(count - 1, int(count * 0.99))] * 1000,
        server_cpu_us=server_cpu / count * 1e6, generator_cpu_us=generator_cpu / count * 1e6,
        failures=len(tally.failures), throttled=tally.throttled)


def connector(port: int, token: str) -> Callable[[], Connection]:
    headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return lambda: Connection("127.0.0.1", port, headers)


# Okta's create body without a password, and its existence check, as `scimflow bench` sends them.
OKTA = Okta(passwords=False)


@dataclass(frozen=True)
class Users:
    """Unique users of one load (the bench's plan for a run id)."""

    plan: SyncPlan

    def user_body(self, index: int) -> dict[str, Any]:
        return OKTA.user_body(self.plan, index, None)

    def existence_path(self, index: int) -> str:
        return OKTA.existence_path(self.plan.user_name(index))


def posts(users: Users, first: int, count: int) -> list[tuple[str, str, Any]]:
    return [("POST", USERS_PATH, users.user_body(i)) for i in range(first, first + count)]


def existence_gets(users: Users, first: int, count: int) -> list[tuple[str, str, Any]]:
    return [("GET", users.existence_path(i), None) for i in range(first, first + count)]


def load_pair(port: int, token: str, pid: int, args: argparse.Namespace) -> dict[str, Figures]:
    """Warm up, then POSTs of new users and existence GETs of users that do not exist."""
    plan = Users(SyncPlan(0, 0, 0, 0, uuid.uuid4().hex[:8]))
    load = {"concurrency": args.concurrency, "server_pid": pid}
    drive(port, token, posts(plan, 0, WARMUP_REQUESTS), **load, expect=(201,))
    post = drive(port, token, posts(plan, WARMUP_REQUESTS, args.requests), **load, expect=(201,))
    get = drive(port, token, existence_gets(plan, WARMUP_REQUESTS + 2 * args.requests,
                                            args.requests), **load, expect=(200,))
    return {"post": post, "get": get}


# --- keep-alive check -----------------------------------------------------------------------

@dataclass
class KeepAlive:
    connections: int
    served: int = 0
    closed_while_idle: int = 0
    reuse_errors: int = 0
    fresh_client_max_ms: float | None = None  # None: the fresh client was not served
    errors: list[str] = field(default_factory=list)


# What a failed exchange on a kept-alive connection raises (ValueError: a malformed answer).
TRANSPORT_ERRORS = (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError)
_GET = f"GET {USERS_PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    timeout: float) -> None:
    """One GET on an open connection; raises on any transport failure or a non-200."""
    writer.write(_GET)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await asyncio.wait_for(reader.readexactly(length), timeout)


async def _open_and_serve(port: int, timeout: float) -> tuple[Any, Any] | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                                timeout)
        await _exchange(reader, writer, timeout)
        return reader, writer
    except TRANSPORT_ERRORS:
        return None


async def _fresh_client_max_ms(port: int, requests: int = 20) -> float | None:
    served = await _open_and_serve(port, 10)
    if served is None:
        return None
    reader, writer = served
    slowest = 0.0
    try:
        for _ in range(requests):
            started = time.perf_counter()
            await _exchange(reader, writer, 10)
            slowest = max(slowest, time.perf_counter() - started)
    except TRANSPORT_ERRORS:
        return None
    finally:
        writer.close()
    return slowest * 1000


async def keepalive_check(port: int, connections: int, idle_seconds: float) -> KeepAlive:
    result = KeepAlive(connections)
    opened = await asyncio.gather(*(_open_and_serve(port, 10) for _ in range(connections)))
    alive = [pair for pair in opened if pair is not None]
    result.served = len(alive)
    await asyncio.sleep(idle_seconds / 2)
    result.fresh_client_max_ms = await _fresh_client_max_ms(port)
    await asyncio.sleep(idle_seconds / 2)
    result.closed_while_idle = sum(reader.at_eof() for reader, _ in alive)

    async def reuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _exchange(reader, writer, 10)
        except TRANSPORT_ERRORS as ex:
            result.reuse_errors += 1
            if len(result.errors) < 3:
                result.errors.append(type(ex).__name__)
        finally:
            writer.close()

    await asyncio.gather(*(reuse(reader, writer) for reader, writer in alive))
    return result


class BenchProcesses(Processes):
    """The stack's processes, and a command's output (the tenant and its token)."""

    def run_output(self, argv: list[str]) -> str:
        return subprocess.run(argv, env=self.env, check=True, capture_output=True, text=True,
                              timeout=120).stdout


# --- one candidate --------------------------------------------------------------------------

@contextmanager
def serving(processes: Processes, name: str, argv: list[str], ready_url: str) -> Iterator[int]:
    """Start a server, wait until `ready_url` answers 200; yields its process id."""
    processes.spawn(name, argv)
    try:
        wait_http(ready_url)
        yield processes.running[name].pid
    finally:
        processes.stop(name)


def bare_figures(server: Candidate, processes: Processes,
                 args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    with serving(processes, f"{server.name}-bare", server.bare(f"127.0.0.1:{port}"),
                 f"http://127.0.0.1:{port}{USERS_PATH}") as pid:
        figures: dict[str, Any] = dict(load_pair(port, "", pid, args))
        if args.idle_seconds > 0:
            figures["keepalive"] = asyncio.run(
                keepalive_check(port, args.idle_connections, args.idle_seconds))
    return figures


def api_figures(server: Candidate, processes: BenchProcesses,
                args: argparse.Namespace) -> dict[str, Figures]:
    created = json.loads(processes.run_output(
        [str(BIN / "scimflow"), "tenant", "create", f"servers-{uuid.uuid4().hex[:6]}",
         "--json"]))
    port = free_port()
    argv = [str(BIN / "scimflow"), "api", "--bind", f"127.0.0.1:{port}",
            "--workers", str(args.api_processes)]
    if server.threads:
        argv += ["--threads", str(server.threads)]
    processes.env["SCIMFLOW_API_SERVER"] = str(server.api_server)
    with serving(processes, f"{server.name}-api", argv,
                 f"http://127.0.0.1:{port}/healthz") as pid:
        return load_pair(port, created["token"], pid, args)


def measure_candidate(server: Candidate, processes: BenchProcesses,
                      args: argparse.Namespace) -> dict[str, Any]:
    _progress(f"{server.name}: bare app")
    figures = {"bare": bare_figures(server, processes, args)}
    if server.api_server is not None:
        _progress(f"{server.name}: scimflow API")
        figures["api"] = api_figures(server, processes, args)
    return figures


# --- the run --------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    settings = Settings.from_env()
    servers = [candidate(spec, args.api_processes, settings) for spec in args.servers.split(",")]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="scimflow-servers-") as workdir, \
            fresh_database(args.admin_database_url) as database_url:
        processes = BenchProcesses(Path(workdir), _env(database_url, args))
        processes.run([str(BIN / "scimflow"), "migrate"])
        try:
            for server in servers:
                try:
                    results[server.name] = measure_candidate(server, processes, args)
                except (RuntimeError, OSError, subprocess.SubprocessError) as failure:
                    # One server that does not start must not cost the others' figures.
                    _progress(f"{server.name}: FAILED: {failure}")
        finally:
            processes.stop_all()
            redis.Redis.from_url(args.broker_url).flushdb()
    return results


def _env(database_url: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SCIMFLOW_DATABASE_URL": database_url, "SCIMFLOW_BROKER_URL": args.broker_url,
                "SCIMFLOW_LOG_LEVEL": "WARNING", "SCIMFLOW_PASSWORD_POLICY": "ignore",
                "SCIMFLOW_API_PROCESSES": str(args.api_processes),
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- report ---------------------------------------------------------------------------------

def rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per candidate, app and request kind, with the ratio to the bare app."""
    table = []
    for name, apps in results.items():
        for app in ("bare", "api"):
            for kind in ("post", "get"):
                figures = apps.get(app, {}).get(kind)
                if figures is None:
                    continue
                bare = apps["bare"][kind]
                table.append({"server": name, "app": app, "request": kind.upper(),
                              "per_s": round(figures.requests_per_s),
                              "p50_ms": round(figures.p50_ms, 1),
                              "p99_ms": round(figures.p99_ms, 1),
                              "api_cpu_us": round(figures.server_cpu_us),
                              "generator_cpu_us": round(figures.generator_cpu_us),
                              "vs_bare": round(figures.requests_per_s / bare.requests_per_s, 3),
                              "failures": figures.failures, "throttled": figures.throttled})
    return table


def keepalive_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"server": name, **vars(apps["bare"]["keepalive"])}
            for name, apps in results.items() if "keepalive" in apps["bare"]]


def print_table(table: list[dict[str, Any]], checks: list[dict[str, Any]]) -> None:
    print(f"{'server':<14}{'app':<6}{'req':<6}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'API µs':>9}{'gen µs':>8}{'vs bare':>9}{'fail':>6}{'429':>6}")
    for row in table:
        print(f"{row['server']:<14}{row['app']:<6}{row['request']:<6}{row['per_s']:>8.0f}"
              f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['api_cpu_us']:>9.0f}"
              f"{row['generator_cpu_us']:>8.0f}{row['vs_bare']:>9.3f}{row['failures']:>6.0f}"
              f"{row['throttled']:>6.0f}")
    if not checks:
        return
    print(f"\n{'server':<14}{'conns':>7}{'served':>8}{'closed idle':>13}"
          f"{'reuse errors':>14}{'fresh max ms':>14}")
    for check in checks:
        fresh = check["fresh_client_max_ms"]
        fresh_text = "not served" if fresh is None else f"{fresh:.1f}"
        print(f"{check['server']:<14}{check['connections']:>7}{check['served']:>8}"
              f"{check['closed_while_idle']:>13}{check['reuse_errors']:>14}{fresh_text:>14}")


def median_rows(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per (server, app, request), the median of each figure over runs' JSON rows."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run_rows in runs:
        for row in run_rows:
            grouped.setdefault((row["server"], row["app"], row["request"]), []).append(row)
    return [{"server": s, "app": a, "request": r,
             **{key: statistics.median(row[key] for row in group)
                for key in group[0] if key not in ("server", "app", "request")}}
            for (s, a, r), group in grouped.items()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", default="gunicorn,uwsgi,granian,granian-asgi,uvicorn")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--idle-connections", type=int, default=300)
    parser.add_argument("--idle-seconds", type=float, default=35.0)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--admin-database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="print JSON rows, not a table")
    parser.add_argument("--median-of", nargs="+", type=Path, default=None,
                        help="print the medians of earlier --json outputs (and their keep-alive"
                             " checks) instead of running")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.median_of:
        outputs = [json.loads(path.read_text()) for path in args.median_of]
        print_table(median_rows([output["rows"] for output in outputs]),
                    [check for output in outputs for check in output["keepalive"]])
        return 0
    results = run(args)
    if args.json:
        print(json.dumps({"rows": rows(results), "keepalive": keepalive_rows(results)},
                         indent=1))
    else:
        print_table(rows(results), keepalive_rows(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
