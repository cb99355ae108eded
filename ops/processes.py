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
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "api.wsgi:app",
        "--bind",
        args.bind,
        "--workers",
        str(args.workers or settings.api_processes),
        "--threads",
        str(args.threads),
        "--worker-class",
        "gthread",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "20",
        "--timeout",
        "60",
    ]
    os.execv(sys.executable, argv)


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with a Celery worker; the urgent queue is consumed first."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.main",
        "worker",
        "--queues",
        "scimflow.urgent,scimflow",
        "--concurrency",
        str(args.concurrency or settings.worker_concurrency),
        "--prefetch-multiplier",
        "1",
        "--task-events",
        "--loglevel",
        settings.log_level,
        "--hostname",
        args.hostname,
    ]
    os.execv(sys.executable, argv)


def run_beat(settings: Settings, args: argparse.Namespace) -> int:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.main",
        "beat",
        "--loglevel",
        settings.log_level,
        "--schedule",
        args.schedule,
    ]
    os.execv(sys.executable, argv)
