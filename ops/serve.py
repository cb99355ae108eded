"""`scimflow serve`: the embedded default, API and worker in one process on SQLite.

The same write path, journal and apply path as production; the doorbell is in-process and the
database is a SQLite file, so nothing else has to run.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scimflow.api.wsgi import build_app, configure_logging
from scimflow.ops.admin import base_url
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import upgrade
from scimflow.workers.inprocess import InProcessWorker
from scimflow.workers.runtime import build_drainer

log = logging.getLogger("scimflow")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)


def serve(settings: Settings, *, host: str, port: int) -> int:
    if settings.public_url == Settings().public_url:
        # No public URL configured: Locations point at where this process listens.
        settings = replace(settings, public_url=f"http://{host}:{port}")
    configure_logging(settings)
    upgrade(settings.database_url)
    worker = InProcessWorker(
        build_drainer(settings, make_sessions(make_engine(settings, "worker"))),
        idle_seconds=min(settings.sweep_interval_seconds, 5.0),
    )
    app = build_app(settings, worker)
    worker.start()
    server = make_server(host, port, app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    log.info("scimflow serving %s on http://%s:%d (database %s)", base_url(settings), host,
             server.server_port, settings.database_url)
    print(f"scimflow is serving {base_url(settings)} -- create a tenant with "
          "`scimflow tenant create NAME`; Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        worker.stop()
    return 0
