"""`scimflow console`: the operator console under the production server, like `scimflow api`.

It serves `api/console_wsgi.py` (named, not imported: ops does not import api) with the
configured server: granian builds it per process through its factory, gunicorn and uWSGI
through the module's lazily built `app`. See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

import argparse
import os

from scimflow.ops.processes import granian_argv, gunicorn_argv, uwsgi_argv
from scimflow.pipeline.settings import ApiServer, Settings
from scimflow.pipeline.store.migrate import require_current

CONSOLE_MODULE = "scimflow.api.console_wsgi"
DEFAULT_BIND = "127.0.0.1:8001"
# A few operators, not IdPs: one process with a few threads is plenty.
DEFAULT_PROCESSES = 1
DEFAULT_THREADS = 4


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = commands.add_parser(
        "console", help="run the operator console (web; operators: `scimflow operator create`)"
    )
    console.add_argument("--bind", default=DEFAULT_BIND,
                         help=f"HOST:PORT to listen on (default: {DEFAULT_BIND})")
    console.add_argument("--workers", type=int, default=DEFAULT_PROCESSES,
                         help=f"server processes (default: {DEFAULT_PROCESSES})")
    console.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                         help=f"threads per process (default: {DEFAULT_THREADS})")
    console.set_defaults(handler=run_console, needs_schema=False)


def run_console(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with the console's server; a replay rings through the broker."""
    settings.require_broker("`scimflow console`")
    require_current(settings.database_url)
    argv = console_argv(settings, args.bind, args.workers, args.threads)
    os.execv(argv[0], argv)


def console_argv(settings: Settings, bind: str, processes: int, threads: int) -> list[str]:
    """The command line of the configured server (SCIMFLOW_API_SERVER) serving the console."""
    if settings.api_server is ApiServer.GRANIAN:
        return granian_argv(f"{CONSOLE_MODULE}:application", bind, processes, threads,
                            factory=True, access_log=settings.access_log)
    if settings.api_server is ApiServer.UWSGI:
        return uwsgi_argv(f"{CONSOLE_MODULE}:app", bind, processes, threads,
                          access_log=settings.access_log)
    return gunicorn_argv(f"{CONSOLE_MODULE}:app", bind, processes, threads,
                         connections=threads, access_log=settings.access_log)
