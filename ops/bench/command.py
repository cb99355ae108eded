"""The `scimflow bench` command line (the benchmark itself loads only when it runs).

The benchmark needs the PostgreSQL driver and the production extras; keeping its imports out
of the command's registration lets `scimflow` run on the embedded default without them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scimflow.pipeline.settings import ApiServer, Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="an IdP's initial sync benchmark, with baselines")
    bench.add_argument("--idp", choices=("okta", "entra"), default="okta",
                       help="whose request shapes the sync sends")
    bench.add_argument("--no-passwords", dest="passwords", action="store_false",
                       help="Okta creates without a password (Okta's \"Sync password\" off)")
    bench.add_argument("--phases", default="ack,sync,existence",
                       help="comma-separated: ack (POST only), sync, existence (look-ups of "
                            "existing and missing userNames after the sync's load)")
    bench.add_argument("--users", type=int, default=2000)
    bench.add_argument("--groups", type=int, default=20)
    bench.add_argument("--members", type=int, default=100, help="members per group")
    bench.add_argument("--deactivations", type=int, default=100)
    bench.add_argument("--concurrency", type=int, default=64)
    bench.add_argument("--api-processes", type=int, default=2)
    bench.add_argument("--api-threads", type=int, default=8, help="threads per API process")
    bench.add_argument("--api-server", choices=[s.value for s in ApiServer],
                       help="the API's server (default: SCIMFLOW_API_SERVER)")
    bench.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    bench.add_argument("--no-webhooks", dest="webhooks", action="store_false",
                       help="no webhook endpoint, receiver or events worker in the sync")
    bench.add_argument("--events-threads", type=int, default=4,
                       help="delivery threads of the events worker (its --concurrency)")
    bench.add_argument("--no-sessions", dest="sessions", action="store_false",
                       help="no application sessions: neither deprovision -> session check "
                            "revoked in the sync nor the session-check phase after it")
    bench.add_argument("--session-checks", type=int, default=20000,
                       help="session checks (GET /app/v1/tenants/{t}/sessions/{sid}) after the "
                            "sync, and as many GETs against the bare Falcon baseline")
    bench.add_argument("--baseline-requests", type=int, default=5000)
    bench.add_argument("--existence-requests", type=int, default=10000,
                       help="GETs of the existence phase (half existing, half missing)")
    bench.add_argument("--apply-after-ack", action="store_true",
                       help="start the workers only once every user is acknowledged, to "
                            "measure acknowledgement and apply capacity separately")
    bench.add_argument("--admin-database-url",
                       default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                       help="server where a scratch database is created for the run")
    bench.add_argument("--broker-url", default="redis://127.0.0.1:6379/7")
    bench.add_argument("--set", dest="stack_settings", action="append", default=[],
                       metavar="NAME=VALUE",
                       help="a setting of the stack's processes (SCIMFLOW_NAME), repeatable; "
                            "e.g. tenant_in_flight_limit=2 to see admission control at work")
    bench.add_argument("--console-operators", type=int, default=0,
                       help="operators reloading the tenant's console page during the sync "
                            "(starts `scimflow console`; 0: no console)")
    bench.add_argument("--console-interval", type=float, default=1.0,
                       help="seconds between one operator's reloads")
    bench.add_argument("--console-screenshots", type=Path, default=None, metavar="DIR",
                       help="save the console's tenant and history pages half-way through "
                            "the users (headless Chromium)")
    bench.add_argument("--json", action="store_true", help="print a JSON summary")
    bench.set_defaults(handler=_run, needs_schema=False)  # it builds its own databases


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from scimflow.ops.bench.runner import run  # noqa: PLC0415 - needs psycopg and gunicorn

    args.api_server = args.api_server or settings.api_server.value
    args.api_connections = settings.api_worker_connections
    return run(settings, args)
