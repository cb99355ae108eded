"""`scimflow serve`: the embedded default, API and worker in one process on SQLite.

The same write path, journal and apply path as production; the doorbell is in-process and the
database is a SQLite file, so nothing else has to run. This is the embedded process's
composition root: `embedded_process` wires the API and the worker from the one Settings the
command line read, and mounts the operator console at /console. See docs/ARCHITECTURE.md
("Layers").
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scimflow.api.console.services import CONSOLE_ROOT
from scimflow.api.console_wsgi import build_console
from scimflow.api.services import WsgiApp
from scimflow.api.wsgi import build_app, configure_logging
from scimflow.ops.output import base_url
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions, masked_url, sqlite_file
from scimflow.workers.inprocess import InProcessWorker
from scimflow.workers.inprocess_delivery import InProcessDelivery
from scimflow.workers.runtime import build_deliverer, build_drainer, build_embedded_pruner

log = logging.getLogger("scimflow")

WsgiCallable = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)


def local_server(host: str, port: int, app: WsgiApp | WsgiCallable) -> WSGIServer:
    """The embedded mode's threaded HTTP server (wsgiref) for `app`."""
    return make_server(host, port, without_connection_header(app),
                       server_class=_ThreadingServer, handler_class=_QuietHandler)


def without_connection_header(app: WsgiApp | WsgiCallable) -> WsgiCallable:
    """wsgiref refuses an application's hop-by-hop `Connection` header (an assertion, which
    would turn an early 401 into a 500); it closes after every answer anyway (HTTP/1.0)."""

    def application(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "connection"]
            return start_response(status, kept, *exc_info)

        return app(environ, start)

    return application


def with_console(api: WsgiApp | WsgiCallable, console: WsgiApp | WsgiCallable,
                 root: str = CONSOLE_ROOT) -> WsgiCallable:
    """One server for both: paths under `root` go to the console, the rest to the API."""

    def application(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        inside = path == root or path.startswith(f"{root}/")
        return (console if inside else api)(environ, start_response)

    return application


def invocation() -> str:
    """How to run scimflow again the way this process was started (it may not be on PATH)."""
    program = Path(sys.argv[0])
    if program.name == "__main__.py":
        return f"{Path(sys.executable).name} -m scimflow"
    if shutil.which(program.name) == str(program.resolve()):
        return program.name
    try:
        return str(program.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(program.resolve())


def database_name(settings: Settings) -> str:
    """The database, with a SQLite file as its absolute path (the URL's may be relative)."""
    path = sqlite_file(settings.database_url)
    return str(path) if path is not None else masked_url(settings.database_url)


@dataclass(frozen=True, slots=True)
class EmbeddedWorkers:
    """The embedded process's background threads: the drain, and webhook delivery."""

    drain: InProcessWorker
    delivery: InProcessDelivery

    def start(self) -> None:
        self.drain.start()
        self.delivery.start()

    def stop(self) -> None:
        self.drain.stop()
        self.delivery.stop()


def embedded_process(settings: Settings) -> tuple[WsgiApp, EmbeddedWorkers]:
    """The API, rung by the in-process worker that drains and prunes, and the thread that
    delivers webhooks (neither started yet)."""
    sessions = make_sessions(make_engine(settings, "worker"))
    # Its own connection: a slow receiver must not keep the drain waiting for one.
    delivery_sessions = make_sessions(make_engine(settings, "worker"))
    delivery = InProcessDelivery(delivery_sessions,
                                 build_deliverer(settings, delivery_sessions),
                                 interval=settings.webhook_sweep_seconds)
    worker = InProcessWorker(
        build_drainer(settings, sessions),
        idle_seconds=min(settings.sweep_interval_seconds, 5.0),
        pruner=build_embedded_pruner(settings, sessions),
        prune_every=settings.retention_interval_seconds,
        after_drain=delivery.after_drain,
    )
    return build_app(settings, worker), EmbeddedWorkers(worker, delivery)


def serve(settings: Settings, *, host: str, port: int) -> int:
    if settings.public_url == Settings().public_url:
        # No public URL configured: Locations point at where this process listens.
        settings = replace(settings, public_url=f"http://{host}:{port}")
    configure_logging(settings)
    app, worker = embedded_process(settings)
    worker.start()
    console = build_console(settings, worker.drain)
    server = local_server(host, port, with_console(app, console))
    log.info("scimflow serving %s on http://%s:%d", base_url(settings), host, server.server_port)
    print(f"scimflow is serving {base_url(settings)} on the database {database_name(settings)}\n"
          f"create a tenant, from this directory: {invocation()} tenant create NAME\n"
          f"the operator console: http://{host}:{server.server_port}{CONSOLE_ROOT} "
          f"(an operator: {invocation()} operator create NAME)\n"
          "Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        worker.stop()
    return 0
