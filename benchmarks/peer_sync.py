"""An IdP-driven initial sync against scimflow and against a synchronous SCIM server, side by side.

The peer is django-scim2 (`benchmarks/peers/django_scim2/`: its standard User and Group
adapters, bearer-token authentication, persistent database connections, served by gunicorn
with 2 sync workers), installed into a venv of its own (`benchmarks/peers/.venv`, created on
first use). scimflow is its production stack as `scimflow bench` starts it (`scimflow api` with
the configured server, 2 processes; `scimflow worker` with 2 processes; beat). Each gets a
scratch database on the same PostgreSQL server.

In one run: (1) the peer: the sync of N users the way an IdP drives it (per user an existence
`GET /Users?filter=userName eq "…"`, then `POST /Users`; Okta's request shapes, no password),
C keep-alive connections, from the project's asyncio load generator; (2) scimflow: the same
sync, same N, same connections, then waiting until its directory is fully applied; (3) the
idle-reuse check on both servers at once: open K connections, send one request on each, leave
them idle for S seconds, send one more on each. Per server: existence GETs and POSTs,
requests/s, p50/p99 per request kind, transport errors (a kept-alive connection that fails on
reuse although the server never said it would close it), connections the server closed by
announcing `Connection: close`, time until the directory is applied, and CPU per request of
the server's processes and of PostgreSQL (from /proc). Then the ratios scimflow / peer.

Usage (under the shared benchmark lock; each run takes about 4 minutes at the defaults):
  .venv/bin/python benchmarks/peer_sync.py --json > run1.json
  .venv/bin/python benchmarks/peer_sync.py --median-of run1.json run2.json run3.json
Options: --users 5000 --concurrency 32 --idle-connections 64 --idle-seconds 35
  --broker-url redis://127.0.0.1:6379/2 --admin-database-url postgresql+psycopg://…/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
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

import redis
from sqlalchemy.engine import make_url

from scimflow.ops.bench import measure
from scimflow.ops.bench.ack import start_scimflow
from scimflow.ops.bench.http import Connection, Response, read_response
from scimflow.ops.bench.load import Driver, Tally
from scimflow.ops.bench.okta import Okta
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.stack import BIN, Processes, free_port, fresh_database, wait_http
from scimflow.ops.bench.sync import EXISTENCE_GET, POST_USERS, SyncState, push_users
from scimflow.pipeline.settings import Settings

HERE = Path(__file__).resolve().parent
PEER_DIR = HERE / "peers" / "django_scim2"
PEER_VENV = HERE / "peers" / ".venv"
PEER_PACKAGES = ("django", "django-scim2", "psycopg[binary]", "gunicorn")
PEER_WORKERS = 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# What a failed exchange on a connection raises (ValueError: a malformed answer).
TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)
ANSWER_TIMEOUT_SECONDS = 60.0


# --- the peer's venv ------------------------------------------------------------------------

def ensure_peer_venv() -> Path:
    """The peer's interpreter, creating its venv and installing django-scim2 the first time."""
    python = PEER_VENV / "bin" / "python"
    if not (PEER_VENV / "bin" / "gunicorn").exists():
        _progress(f"creating {PEER_VENV} and installing {' '.join(PEER_PACKAGES)}")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES],
                       check=True)
    return python


# --- a keep-alive connection that counts what happens to it ---------------------------------

@dataclass
class Transport:
    """What the connections of one load saw, beyond HTTP statuses."""

    opened: int = 0
    announced_closes: int = 0  # answers with `Connection: close`: an IdP's client reconnects
    reuse_errors: int = 0  # a kept-alive connection failed on reuse (then retried once, fresh)
    errors: list[str] = field(default_factory=list)


class CountingConnection(Connection):
    """ops/bench/http.py's keep-alive connection, with two differences an IdP's HTTP client
    has too: it honours `Connection: close` (the next request opens a new connection), and it
    counts a failure of a kept-alive connection on reuse before retrying once on a fresh one,
    so that a server closing idle connections under its clients shows up as a figure."""

    def __init__(self, host: str, port: int, headers: dict[str, str],
                 transport: Transport) -> None:
        super().__init__(host, port, headers)
        fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head_fields = f"{fixed}Host: {host}:{port}\r\n"
        self._address = (host, port)
        self._transport = transport
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: Any = None) -> Response:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self._head_fields}"
        message = f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload
        reused = self._streams is not None
        try:
            return await self._exchange(message)
        except TRANSPORT_ERRORS as failure:
            await self.close()
            if not reused:
                raise
            self._transport.reuse_errors += 1
            if len(self._transport.errors) < 5:
                self._transport.errors.append(f"{type(failure).__name__}: {failure}")
            return await self._exchange(message)

    def is_open(self) -> bool:
        return self._streams is not None

    def closed_by_server(self) -> bool:
        """Whether the server closed this kept-alive connection (seen without reading)."""
        return self._streams is not None and self._streams[0].at_eof()

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        self._streams = None

    async def _exchange(self, message: bytes) -> Response:
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self._address)
            self._transport.opened += 1
        reader, writer = self._streams
        writer.write(message)
        await writer.drain()
        response = await asyncio.wait_for(read_response(reader), ANSWER_TIMEOUT_SECONDS)
        if response.headers.get("connection", "").lower() == "close":
            self._transport.announced_closes += 1
            await self.close()
        return response


def counting_connector(port: int, token: str,
                       transport: Transport) -> Callable[[], CountingConnection]:
    headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json",
               "Authorization": f"Bearer {token}"}
    return lambda: CountingConnection("127.0.0.1", port, headers, transport)


# --- CPU from /proc -------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()  # the fields after the command name


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except (OSError, ValueError):
            continue  # ended meanwhile
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (threads included)
    return ticks / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            children.setdefault(int(_stat_fields(pid)[1]), []).append(pid)
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in children.get(pid, [])]
        tree.extend(frontier)
    return _cpu_seconds(tree)


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL process on the machine (both servers share it; the lock keeps
    other benchmarks off it)."""
    def is_postgres(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
        except OSError:
            return False

    return _cpu_seconds([pid for pid in _all_pids() if is_postgres(pid)])


@dataclass
class CpuMeter:
    """CPU of named process trees, PostgreSQL and this process, from one moment on."""

    roots: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        now = {name: tree_cpu_seconds(pid) for name, pid in self.roots.items()}
        return now | {"postgres": postgres_cpu_seconds(), "load_generator": time.process_time()}

    def spent(self) -> dict[str, float]:
        return {name: value - self._start[name] for name, value in self._now().items()}


# --- one server's sync ----------------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    name: str
    port: int
    token: str
    cpu_roots: dict[str, int]  # process trees whose CPU is the server's


def drive_sync(server: Server, plan: SyncPlan, concurrency: int
               ) -> tuple[Tally, Transport, dict[str, float]]:
    """The users-only sync: per user an existence GET then a POST, `concurrency` connections."""
    tally, transport = Tally(), Transport()
    meter = CpuMeter(server.cpu_roots)

    async def everything() -> None:
        tally.started = time.perf_counter()
        await push_users(plan, Okta(passwords=False), Driver(tally),
                         counting_connector(server.port, server.token, transport),
                         concurrency=concurrency, state=SyncState())
        tally.finished = time.perf_counter()

    asyncio.run(everything())
    return tally, transport, meter.spent()


def sync_figures(tally: Tally, transport: Transport, cpu: dict[str, float]) -> dict[str, Any]:
    wall = tally.finished - tally.started
    requests = sum(len(values) for values in tally.latencies.values())
    kinds = {kind: {"requests": len(values), "p50_ms": measure.percentile_ms(values, 0.50),
                    "p99_ms": measure.percentile_ms(values, 0.99)}
             for kind, values in sorted(tally.latencies.items())}
    return {
        "existence_gets": tally.count(EXISTENCE_GET), "posts": tally.count(POST_USERS),
        "seconds": round(wall, 2), "requests_per_s": round(requests / wall, 1),
        "posts_per_s": round(tally.count(POST_USERS) / wall, 1), "by_kind": kinds,
        "non_2xx": sum(n for status, n in tally.statuses.items() if status >= 300),
        "throttled_429_503": tally.throttled, "failures": tally.failures[:5],
        "transport_errors": transport.reuse_errors, "transport_error_samples": transport.errors,
        "connections_opened": transport.opened, "announced_closes": transport.announced_closes,
        "cpu_us_per_request": {name: round(seconds / max(1, requests) * 1e6)
                               for name, seconds in cpu.items()},
    }


# --- the peer -------------------------------------------------------------------------------

def _peer_env(database_url: str, token: str) -> dict[str, str]:
    url = make_url(database_url)
    return dict(os.environ) | {
        "DJANGO_SETTINGS_MODULE": "peer_project.settings", "PYTHONPATH": str(PEER_DIR),
        "PEER_DATABASE_NAME": str(url.database), "PEER_DATABASE_USER": str(url.username or ""),
        "PEER_DATABASE_PASSWORD": str(url.password or ""),
        "PEER_DATABASE_HOST": str(url.host or "127.0.0.1"),
        "PEER_DATABASE_PORT": str(url.port or 5432), "PEER_BEARER_TOKEN": token,
    }


@contextmanager
def peer_server(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[Server, str]]:
    """django-scim2 on a scratch database, migrated and serving; yields it and its database."""
    python = ensure_peer_venv()
    token = secrets.token_urlsafe(24)
    with fresh_database(args.admin_database_url) as database_url:
        processes = Processes(workdir, _peer_env(database_url, token))
        try:
            processes.run([str(python), str(PEER_DIR / "manage.py"), "migrate", "-v0"])
            port = free_port()
            # gunicorn's default worker class (sync), the one its docs describe for
            # applications without long-polling: one request at a time per process.
            processes.spawn("peer", [
                str(PEER_VENV / "bin" / "gunicorn"), "peer_project.wsgi:application",
                "--chdir", str(PEER_DIR), "--workers", str(PEER_WORKERS),
                "--bind", f"127.0.0.1:{port}", "--worker-class", "sync"])
            wait_http(f"http://127.0.0.1:{port}/healthz")
            yield Server("django-scim2", port, token,
                         {"server": processes.running["peer"].pid}), database_url
        finally:
            processes.stop_all()


def peer_sync(server: Server, database_url: str, plan: SyncPlan,
              args: argparse.Namespace) -> dict[str, Any]:
    _progress(f"{server.name}: sync of {plan.users} users")
    tally, transport, cpu = drive_sync(server, plan, args.concurrency)
    figures = sync_figures(tally, transport, cpu)
    users = measure.query(database_url, "SELECT count(*) FROM directory_user")[0][0]
    # Synchronous: the directory is applied when the last POST is answered.
    return figures | {"applied_seconds": figures["seconds"], "directory_users": int(users)}


# --- scimflow -------------------------------------------------------------------------------

def _scimflow_env(database_url: str, args: argparse.Namespace) -> dict[str, str]:
    return dict(os.environ) | {
        "SCIMFLOW_DATABASE_URL": database_url, "SCIMFLOW_BROKER_URL": args.broker_url,
        "SCIMFLOW_LOG_LEVEL": "WARNING", "SCIMFLOW_WORKER_CONCURRENCY": str(args.workers),
        "SCIMFLOW_API_PROCESSES": str(args.api_processes),
        "SCIMFLOW_PASSWORD_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@contextmanager
def scimflow_server(args: argparse.Namespace, workdir: Path
                    ) -> Iterator[tuple[Server, str, str]]:
    """The production stack on a scratch database; yields it, its database and the tenant."""
    with fresh_database(args.admin_database_url) as database_url:
        processes = Processes(workdir, _scimflow_env(database_url, args))
        try:
            port, created = start_scimflow(processes, args, with_workers=True)
            roots = {name: processes.running[name].pid for name in ("api", "worker", "beat")}
            yield (Server("scimflow", port, created["token"], roots), database_url,
                   created["tenant_id"])
        finally:
            processes.stop_all()


def scimflow_sync(server: Server, database_url: str, tenant_id: str, plan: SyncPlan,
                  args: argparse.Namespace) -> dict[str, Any]:
    _progress(f"{server.name}: sync of {plan.users} users")
    # The workers' CPU counts until the directory is applied, the API's until the last answer.
    workers = CpuMeter({"workers": server.cpu_roots["worker"], "beat": server.cpu_roots["beat"]})
    api_only = Server(server.name, server.port, server.token, {"api": server.cpu_roots["api"]})
    tally, transport, cpu = drive_sync(api_only, plan, args.concurrency)
    applied = _wait_applied(database_url, tally.started)
    figures = sync_figures(tally, transport, cpu)
    spent = workers.spent()
    users = measure.query(database_url, "SELECT count(*) FROM users WHERE tenant_id = %s",
                          tenant_id)[0][0]
    return figures | {
        "applied_seconds": round(applied, 2), "directory_users": int(users),
        "workers_cpu_us_per_user": round((spent["workers"] + spent["beat"])
                                         / max(1, plan.users) * 1e6),
        "postgres_cpu_us_per_user_until_applied": round(spent["postgres"]
                                                        / max(1, plan.users) * 1e6)}


def _wait_applied(database_url: str, started: float, timeout: float = 600) -> float:
    """Seconds from the sync's first request until no journal entry is pending."""
    while time.perf_counter() - started < timeout:
        if measure.backlog(database_url) == 0:
            return time.perf_counter() - started
        time.sleep(0.1)
    raise RuntimeError("scimflow's directory was not applied in time")


# --- idle reuse -----------------------------------------------------------------------------

async def idle_reuse(server: Server, path: str, connections: int,
                     idle_seconds: float) -> dict[str, Any]:
    """Open `connections`, one request each, idle them, then one more request on each."""
    transport = Transport()
    connect = counting_connector(server.port, server.token, transport)
    pool = [connect() for _ in range(connections)]
    first = await asyncio.gather(*(c.request("GET", path) for c in pool),
                                 return_exceptions=True)
    kept_alive = [c for c in pool if c.is_open()]
    await asyncio.sleep(idle_seconds)
    closed_while_idle = sum(c.closed_by_server() for c in kept_alive)
    second = await asyncio.gather(*(c.request("GET", path) for c in pool),
                                  return_exceptions=True)
    await asyncio.gather(*(c.close() for c in pool))
    return {"connections": connections, "kept_alive_after_first": len(kept_alive),
            "announced_closes": transport.announced_closes,
            "closed_while_idle": closed_while_idle, "transport_errors": transport.reuse_errors,
            "failed_requests": sum(isinstance(r, BaseException) or r.status != 200
                                   for r in (*first, *second)),
            "errors": transport.errors}


def idle_checks(servers: list[Server], path: str, args: argparse.Namespace
                ) -> dict[str, dict[str, Any]]:
    """The idle-reuse check on every server at once (one idle period for all)."""
    _progress(f"idle reuse: {args.idle_connections} connections each, "
              f"idle {args.idle_seconds:g} s")

    async def everything() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(
            idle_reuse(s, path, args.idle_connections, args.idle_seconds) for s in servers)))

    return {s.name: result for s, result in zip(servers, asyncio.run(everything()), strict=True)}


# --- the run --------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = SyncPlan(args.users, 0, 0, 0, uuid.uuid4().hex[:6])
    settings = Settings.from_env()
    args.api_threads = settings.api_threads
    missing = Okta(passwords=False).existence_path(plan.missing_user_name(0))
    result: dict[str, Any] = {"plan": {
        "users": plan.users, "concurrency": args.concurrency,
        "scimflow_api_server": os.environ.get("SCIMFLOW_API_SERVER", settings.api_server.value),
        "api_processes": args.api_processes, "workers": args.workers,
        "peer_workers": PEER_WORKERS}}
    with tempfile.TemporaryDirectory(prefix="scimflow-peer-") as workdir:
        try:
            with peer_server(args, Path(workdir)) as (peer, peer_database), \
                    scimflow_server(args, Path(workdir)) as (ours, database_url, tenant_id):
                result["peer"] = peer_sync(peer, peer_database, plan, args)
                result["scimflow"] = scimflow_sync(ours, database_url, tenant_id, plan, args)
                if args.idle_seconds > 0:
                    result["idle_reuse"] = idle_checks([peer, ours], missing, args)
        finally:
            redis.Redis.from_url(args.broker_url).flushdb()
    result["ratios"] = ratios(result["scimflow"], result["peer"])
    return result


def ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    """scimflow / peer; above 1 means scimflow is faster (rates) or slower (times)."""
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    def p99(figures: dict[str, Any], kind: str) -> float | None:
        value = figures["by_kind"].get(kind, {}).get("p99_ms")
        return None if value is None else float(value)

    return {
        "requests_per_s": ratio(ours["requests_per_s"], peer["requests_per_s"]),
        "existence_get_p99": ratio(p99(ours, EXISTENCE_GET), p99(peer, EXISTENCE_GET)),
        "post_p99": ratio(p99(ours, POST_USERS), p99(peer, POST_USERS)),
        "applied_seconds": ratio(ours["applied_seconds"], peer["applied_seconds"]),
        "server_cpu_per_request": ratio(ours["cpu_us_per_request"].get("api"),
                                        peer["cpu_us_per_request"].get("server")),
    }


# --- report ---------------------------------------------------------------------------------

FIGURES = (
    ("requests/s", ("requests_per_s",)),
    ("POST /Users per s", ("posts_per_s",)),
    ("existence GETs", ("existence_gets",)),
    ("POSTs", ("posts",)),
    ("existence GET p50 ms", ("by_kind", EXISTENCE_GET, "p50_ms")),
    ("existence GET p99 ms", ("by_kind", EXISTENCE_GET, "p99_ms")),
    ("POST p50 ms", ("by_kind", POST_USERS, "p50_ms")),
    ("POST p99 ms", ("by_kind", POST_USERS, "p99_ms")),
    ("transport errors", ("transport_errors",)),
    ("connections opened", ("connections_opened",)),
    ("Connection: close answers", ("announced_closes",)),
    ("non-2xx / 429+503", ("non_2xx",)),
    ("sync seconds", ("seconds",)),
    ("applied after s", ("applied_seconds",)),
    ("directory users", ("directory_users",)),
)


def _dig(figures: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = figures
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def print_report(result: dict[str, Any]) -> None:
    print(f"plan: {json.dumps(result['plan'])}")
    print(f"{'figure':<28}{'django-scim2':>14}{'scimflow':>14}")
    for label, keys in FIGURES:
        print(f"{label:<28}{_dig(result['peer'], keys)!s:>14}"
              f"{_dig(result['scimflow'], keys)!s:>14}")
    for name in ("server", "api", "postgres", "load_generator"):
        peer = result["peer"]["cpu_us_per_request"].get(name, "-")
        ours = result["scimflow"]["cpu_us_per_request"].get(name, "-")
        print(f"{'CPU µs/request: ' + name:<28}{peer!s:>14}{ours!s:>14}")
    print(f"scimflow workers CPU µs per user (until applied): "
          f"{result['scimflow']['workers_cpu_us_per_user']}")
    print(f"ratios scimflow / peer: {json.dumps(result['ratios'])}")
    for name, check in result.get("idle_reuse", {}).items():
        print(f"idle reuse {name}: {json.dumps(check)}")


def median_of(results: list[Any]) -> Any:
    """The median of every number across runs, with the values it came from."""
    first = results[0]
    if isinstance(first, dict):
        return {key: median_of([r.get(key) for r in results]) for key in first}
    numbers = [r for r in results if isinstance(r, int | float) and not isinstance(r, bool)]
    if len(numbers) == len(results):
        return {"median": statistics.median(numbers), "values": numbers}
    return first


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--idle-connections", type=int, default=64)
    parser.add_argument("--idle-seconds", type=float, default=35.0,
                        help="idle time of the idle-reuse check (0: no check)")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/2")
    parser.add_argument("--admin-database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.add_argument("--median-of", nargs="+", type=Path, default=None,
                        help="print the medians of earlier --json outputs instead of running")
    return parser.parse_args(argv)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.median_of:
        runs = [json.loads(path.read_text()) for path in args.median_of]
        print(json.dumps(median_of(runs), indent=1))
        return 0
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
