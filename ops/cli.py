"""The `scimflow` command line: run the service, administer tenants, inspect the pipeline.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from scimflow import __version__
from scimflow.ops import (
    admin,
    app_keys,
    console,
    flower,
    operators,
    processes,
    prune,
    roles,
    tenants,
    trace,
    validate,
    webhooks,
)
from scimflow.ops import status as operator_status
from scimflow.ops.bench import command as bench
from scimflow.ops.documents import UnreadableDocument
from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.passwords.crypto import generate_key
from scimflow.pipeline.settings import ConfigError, Settings
from scimflow.pipeline.store.db import masked_url
from scimflow.pipeline.store.migrate import SchemaNotCurrent, require_current

Handler = Callable[[Settings, argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
    except ConfigError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    try:
        if args.needs_schema:
            require_current(settings.database_url)
        return handler(settings, args)
    except (ConfigError, UnreadableDocument) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    except SchemaNotCurrent as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 1
    except (ScimError, SQLAlchemyError) as ex:
        print(f"error: {failure_text(settings, ex)}", file=sys.stderr)
        return 1


def failure_text(settings: Settings, error: ScimError | SQLAlchemyError) -> str:
    """One line; a database failure names the database (never its password) and the cause."""
    cause = error if isinstance(error, SQLAlchemyError) else error.__context__
    if not isinstance(cause, OperationalError | InterfaceError):
        return error.detail if isinstance(error, ScimError) else str(error).splitlines()[0]
    where = masked_url(settings.database_url)
    reason = str(cause.orig or cause).strip().splitlines()[0]
    return f"cannot use the database {where}: {reason}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scimflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scimflow {__version__}")
    # Commands over the database refuse a schema that is behind; only `migrate` changes it.
    # The production processes check it themselves, after their broker setting.
    parser.set_defaults(needs_schema=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_serve(commands)
    _add_production(commands)
    tenants.add_parsers(commands)
    webhooks.add_parsers(commands)
    app_keys.add_parsers(commands)
    roles.add_parsers(commands)
    _add_schemas(commands)
    _add_operations(commands)
    validate.add_parser(commands)
    prune.add_parser(commands)
    bench.add_parser(commands)
    trace.add_parser(commands)
    flower.add_parser(commands)
    console.add_parser(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve", help="API and workers in one process on the embedded SQLite database"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from scimflow.ops.serve import serve  # noqa: PLC0415 - the composition root loads the API

    return serve(settings, host=args.host, port=args.port)


def _add_production(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(
        handler=processes.migrate, needs_schema=False
    )
    api = commands.add_parser("api", help="run the API server (production; SCIMFLOW_API_SERVER)")
    api.add_argument("--bind", default="0.0.0.0:8000")
    api.add_argument("--workers", type=int, default=None,
                     help="API processes (default: SCIMFLOW_API_PROCESSES)")
    api.add_argument("--threads", type=int, default=None,
                     help="threads per process (default: SCIMFLOW_API_THREADS)")
    api.set_defaults(handler=processes.run_api, needs_schema=False)
    worker = commands.add_parser("worker", help="run a Celery worker (production)")
    worker.add_argument("--concurrency", type=int, default=None,
                        help="prefork processes (default: SCIMFLOW_WORKER_CONCURRENCY)")
    worker.add_argument("--hostname", default="worker@%h")
    worker.set_defaults(handler=processes.run_worker, needs_schema=False)
    events = commands.add_parser(
        "events-worker", help="run the Celery worker that delivers webhooks (production)"
    )
    events.add_argument("--concurrency", type=int, default=None,
                        help="delivery threads (default: SCIMFLOW_WEBHOOK_WORKERS)")
    events.add_argument("--hostname", default="events@%h")
    events.set_defaults(handler=processes.run_events_worker, needs_schema=False)
    beat = commands.add_parser("beat", help="run Celery beat: the sweeper schedule")
    beat.add_argument("--schedule", default="/tmp/scimflow-beat-schedule")
    beat.set_defaults(handler=processes.run_beat, needs_schema=False)


def _add_schemas(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schema = commands.add_parser("schema", help="a tenant's extension schemas (RFC 7643 §7)")
    schema_commands = schema.add_subparsers(title="schema commands", metavar="COMMAND")
    add = schema_commands.add_parser("add", help="declare an extension schema for a tenant")
    add.add_argument("tenant", help="tenant name or id")
    add.add_argument("file", help="the schema document, RFC 7643 §7 JSON")
    add.add_argument("--resource-type", default="User", choices=["User", "Group"])
    add.add_argument("--required", action="store_true",
                     help="every resource of the type must carry the extension")
    add.set_defaults(handler=admin.schema_add)
    listing = schema_commands.add_parser("list", help="the extensions a tenant declared")
    listing.add_argument("tenant")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=admin.schema_list)
    remove = schema_commands.add_parser("remove", help="withdraw a declared extension")
    remove.add_argument("tenant")
    remove.add_argument("urn")
    remove.set_defaults(handler=admin.schema_remove)


def _add_operations(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="backlog, lag and dead letters per tenant")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=operator_status.status)
    key = commands.add_parser(
        "password-key", help="print a new key for SCIMFLOW_PASSWORD_KEY (seals passwords)"
    )
    key.set_defaults(handler=_print_password_key, needs_schema=False)
    budget = commands.add_parser(
        "connections", help="the PostgreSQL connection budget against max_connections"
    )
    budget.add_argument("--json", action="store_true")
    budget.set_defaults(handler=admin.connections, needs_schema=False)
    admin.add_dead_letter_parsers(commands)
    operators.add_parsers(commands)


def _print_password_key(_settings: Settings, _args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


if __name__ == "__main__":
    sys.exit(main())
