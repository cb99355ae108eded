"""Production processes: the API (granian, gunicorn or uWSGI), Celery workers and beat.

Each is started with its Prometheus multiprocess directory in `PROMETHEUS_MULTIPROC_DIR`,
set here before the process is replaced, so that it is there before prometheus-client is
imported in any server process or pool child (`metrics_environment`).
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import scimflow
from scimflow.pipeline.passwords.setup import require_password_key
from scimflow.pipeline.ports import Dispatcher
from scimflow.pipeline.settings import ApiServer, LogFormat, Settings
from scimflow.pipeline.store.db import masked_url
from scimflow.pipeline.store.migrate import require_current, upgrade


class _NoBroker:
    """Embedded mode has no broker: the in-process worker wakes up by itself."""

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        return None


def dispatcher_for(settings: Settings) -> Dispatcher:
    """The doorbell of an operator command: it rings once, then the process exits."""
    if settings.embedded:
        return _NoBroker()
    from scimflow.workers.dispatch import broker_dispatcher  # noqa: PLC0415 - only with a broker

    # Not coalesced: a coalesced ring waits for the doorbell thread, which the command's exit
    # would end with the ring still queued. One ring needs no coalescing anyway.
    return broker_dispatcher(settings, coalesce=False)


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the revisions the database lacks, naming each, or say it was current already."""
    applied = upgrade(settings.database_url)
    where = masked_url(settings.database_url)
    if applied:
        print(f"database {where}: applied {len(applied)} revision(s): {', '.join(applied)}")
    else:
        print(f"database {where}: schema already up to date")
    return 0


def _preflight(settings: Settings, who: str, *, seals_passwords: bool = False) -> None:
    """What a production process checks before it starts: a broker, the password key where
    passwords pass through it, then a current schema."""
    settings.require_broker(who)
    if seals_passwords:
        require_password_key(settings, who)
    require_current(settings.database_url)


def metrics_environment(settings: Settings, role: str) -> dict[str, str]:
    """`PROMETHEUS_MULTIPROC_DIR` for a role's processes: `<metrics_dir>/<role>`, emptied of a
    previous run's files (counters would carry over), or a private directory when no
    `metrics_dir` is configured. One per role: the API and a worker on one host must not
    clear or sum each other's figures."""
    if settings.metrics_dir:
        directory = Path(settings.metrics_dir) / role
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix=f"scimflow-metrics-{role}-"))
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}


def run_api(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with the API server (`SCIMFLOW_API_SERVER`)."""
    _preflight(settings, "`scimflow api`", seals_passwords=True)
    argv = api_argv(settings, args.bind, args.workers or settings.api_processes, args.threads)
    os.environ.update(metrics_environment(settings, "api"))
    os.execv(argv[0], argv)


def api_argv(settings: Settings, bind: str, processes: int,
             threads: int | None = None) -> list[str]:
    """The command line of the configured API server, serving the production app."""
    if settings.api_server is ApiServer.GRANIAN:
        return granian_argv("scimflow.api.granian_entry:application", bind, processes,
                            threads or settings.api_threads, factory=True,
                            access_log=settings.access_log)
    if settings.api_server is ApiServer.UWSGI:
        return uwsgi_argv("scimflow.api.uwsgi_entry:application", bind, processes,
                          settings.api_worker_connections, access_log=settings.access_log)
    return [*gunicorn_argv("scimflow.api.wsgi:app", bind, processes,
                           threads or settings.api_threads, settings.api_worker_connections,
                           access_log=settings.access_log), "--config", GUNICORN_HOOKS]


# Named, not imported: ops does not import api (tests/unit/test_layering.py).
BUFFERING_WORKER = "scimflow.api.buffered_worker.RequestBufferingWorker"
# The API's gunicorn hooks (a finished process's metrics marked dead).
GUNICORN_HOOKS = "python:scimflow.api.gunicorn_hooks"
# How long an idle keep-alive connection is kept, as under uWSGI (`--socket-timeout`). Longer
# than HTTP clients keep theirs idle (httpx: 5 s), so the client closes first and never sends a
# request onto a connection the server is closing at that moment (gunicorn's default is 2 s).
KEEPALIVE_SECONDS = 30


def gunicorn_argv(app: str, bind: str, processes: int, threads: int, connections: int, *,
                  access_log: bool = False) -> list[str]:
    # A gthread worker accepts every connection it can get; IdPs keep theirs open, so without
    # a cap one process would own them all and the others would idle. The cap spreads them.
    # The worker class is gthread reading each request whole, under deadlines, before a thread
    # serves it (slow clients hold no thread; SCIM JSON for gunicorn's own errors).
    log = ["--access-logfile", "-"] if access_log else []
    return [sys.executable, "-m", "gunicorn", app, "--bind", bind,
            "--workers", str(processes), "--threads", str(threads),
            "--worker-class", BUFFERING_WORKER,
            "--worker-connections", str(connections), "--keep-alive", str(KEEPALIVE_SECONDS),
            *log, "--graceful-timeout", "20", "--timeout", "60"]


def uwsgi_argv(app: str, bind: str, processes: int, threads: int, *,
               access_log: bool = False) -> list[str]:
    """uWSGI serving HTTP/1.1 itself, one keep-alive connection per thread.

    A connection idle for `--socket-timeout` is closed, so an IdP's idle connections give their
    thread back; `--harakiri` ends a request stuck for a minute, like gunicorn's `--timeout`;
    `--lazy-apps` builds the app in each worker after the fork.
    """
    module, _, callable_name = app.partition(":")
    log = [] if access_log else ["--disable-logging"]
    return [str(Path(sys.executable).parent / "uwsgi"), "--http11-socket", bind,
            "--module", module, "--callable", callable_name, "--master", "--lazy-apps",
            "--need-app", "--processes", str(processes), "--threads", str(threads),
            "--enable-threads", "--die-on-term", "--listen", "1024",
            "--socket-timeout", str(KEEPALIVE_SECONDS),
            "--harakiri", "60", "--worker-reload-mercy", "20", "--buffer-size", "32768",
            # uWSGI's embedded interpreter must find the `scimflow` package (a checkout or
            # site-packages): the folder holding it.
            "--pythonpath", str(Path(scimflow.__file__).resolve().parent.parent), *log]


# granian keeps an idle keep-alive connection as long as it waits for a request head (one
# timer, its `--http1-header-read-timeout`): 60 s, its maximum, so that an IdP reusing a
# connection after half a minute finds it open. A head still arriving holds no thread there
# (granian parses HTTP in Rust and hands only whole heads to the WSGI threads), so the long
# header time costs a socket, not capacity.
GRANIAN_KEEPALIVE_SECONDS = 60


def granian_argv(app: str, bind: str, processes: int, threads: int, *,
                 factory: bool = False, access_log: bool = False) -> list[str]:
    """granian serving WSGI: HTTP/1.1 parsed in Rust, the app on `threads` threads per process.

    Kept-alive connections cost no thread (any number per process, so one IdP's connections
    cannot take the threads other tenants need); `--respawn-failed-workers` replaces a process
    that died or that `api/granian_entry.py` ended for a request stuck past its deadline.
    """
    host, port = _host_and_port(bind)
    log = ["--access-log"] if access_log else []
    # A factory is called in each worker process: the app is built there, never imported built.
    build = ["--factory"] if factory else []
    return [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi",
            "--host", host, "--port", port, "--workers", str(processes),
            "--blocking-threads", str(threads), "--http", "1", "--no-ws",
            "--http1-header-read-timeout", str(GRANIAN_KEEPALIVE_SECONDS * 1000),
            "--backlog", "1024", "--respawn-failed-workers", "--workers-kill-timeout", "20",
            *build, *log, app]


def _host_and_port(bind: str) -> tuple[str, str]:
    """`0.0.0.0:8000` or `[::]:8000` as granian's separate host and port."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--bind must be HOST:PORT, not {bind!r}")
    return host.strip("[]"), port


def _quiet(settings: Settings) -> list[str]:
    """No start-up banner when every line must be a JSON object (a log shipper parses them):
    the same figures are in the worker's log lines."""
    return ["--quiet"] if settings.log_format is LogFormat.JSON else []


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with a Celery worker; the urgent queue is listed first.

    Workers need no gossip or mingle (they share no broadcast state), and each subscription is
    one more thing a broker restart can break.
    """
    _preflight(settings, "`scimflow worker`", seals_passwords=True)
    concurrency = str(args.concurrency or settings.worker_concurrency)
    argv = [sys.executable, "-m", "celery", *_quiet(settings), "-A", "scimflow.workers.main",
            "worker",
            "--queues", "scimflow.urgent,scimflow", "--concurrency", concurrency,
            "--prefetch-multiplier", "1", "--task-events", "--without-gossip",
            "--without-mingle", "--loglevel", settings.log_level, "--hostname", args.hostname]
    os.environ.update(metrics_environment(settings, "worker"))
    os.execv(sys.executable, argv)


def run_events_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with the Celery worker of the `scimflow.events` queue.

    A thread pool: delivery waits on receivers, so a slow endpoint holds one thread while the
    others deliver. The workers that apply never consume this queue, so webhooks cannot slow
    provisioning down.
    """
    _preflight(settings, "`scimflow events-worker`")
    concurrency = str(args.concurrency or settings.webhook_workers)
    # The worker reads its settings again: its database pool must have a connection per
    # thread, so the flag stands for the setting in that process.
    os.environ["SCIMFLOW_WEBHOOK_WORKERS"] = concurrency
    argv = [sys.executable, "-m", "celery", *_quiet(settings), "-A",
            "scimflow.workers.events_main", "worker",
            "--queues", "scimflow.events", "--pool", "threads", "--concurrency", concurrency,
            "--prefetch-multiplier", "1", "--task-events", "--without-gossip",
            "--without-mingle", "--loglevel", settings.log_level, "--hostname", args.hostname]
    os.environ.update(metrics_environment(settings, "events-worker"))
    os.execv(sys.executable, argv)


def run_beat(settings: Settings, args: argparse.Namespace) -> int:
    _preflight(settings, "`scimflow beat`")
    argv = [sys.executable, "-m", "celery", *_quiet(settings), "-A", "scimflow.workers.main",
            "beat",
            "--loglevel", settings.log_level, "--schedule", args.schedule]
    os.execv(sys.executable, argv)
