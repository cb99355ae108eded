"""Production processes: the API under gunicorn, Celery workers and beat, on PostgreSQL + Redis."""

from __future__ import annotations

import argparse
import os
import sys

from pipeline.ports import Dispatcher
from pipeline.settings import Settings
from pipeline.store.migrate import upgrade


class _NoBroker:
    """Embedded mode has no broker: the in-process worker wakes up by itself."""

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        return None


def dispatcher_for(settings: Settings) -> Dispatcher:
    if settings.embedded:
        return _NoBroker()
    from workers.celery_app import make_celery  # noqa: PLC0415 - only with a broker
    from workers.dispatch import CeleryDispatcher  # noqa: PLC0415

    return CeleryDispatcher(make_celery(settings))


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    print("database schema is up to date")
    return 0


def run_api(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with gunicorn serving `api.wsgi:app` (gthread workers)."""
    workers = str(args.workers or settings.api_processes)
    threads = str(args.threads or settings.api_threads)
    access_log = ["--access-logfile", "-"] if settings.access_log else []
    # A gthread worker accepts every connection it can get; IdPs keep theirs open, so without
    # a cap one process would own them all and the others would idle. The cap spreads them.
    argv = [sys.executable, "-m", "gunicorn", "api.wsgi:app", "--bind", args.bind,
            "--workers", workers, "--threads", threads, "--worker-class", "gthread",
            "--worker-connections", str(settings.api_worker_connections), *access_log,
            "--graceful-timeout", "20", "--timeout", "60"]
    os.execv(sys.executable, argv)


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with a Celery worker; the urgent queue is listed first.

    Workers need no gossip or mingle (they share no broadcast state), and each subscription is
    one more thing a broker restart can break.
    """
    concurrency = str(args.concurrency or settings.worker_concurrency)
    argv = [sys.executable, "-m", "celery", "-A", "workers.main", "worker",
            "--queues", "scimflow.urgent,scimflow", "--concurrency", concurrency,
            "--prefetch-multiplier", "1", "--task-events", "--without-gossip",
            "--without-mingle", "--loglevel", settings.log_level, "--hostname", args.hostname]
    os.execv(sys.executable, argv)


def run_beat(settings: Settings, args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "celery", "-A", "workers.main", "beat",
            "--loglevel", settings.log_level, "--schedule", args.schedule]
    os.execv(sys.executable, argv)
