"""`scimflow console` runs the console's WSGI app under the configured server, and
`scimflow serve` mounts it at /console beside the API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from scimflow.ops.cli import _parser
from scimflow.ops.console import CONSOLE_MODULE, console_argv
from scimflow.ops.serve import with_console
from scimflow.pipeline.settings import ApiServer, Settings


def test_the_console_listens_on_loopback_by_default() -> None:
    args = _parser().parse_args(["console"])
    assert args.bind == "127.0.0.1:8001"
    assert args.handler.__name__ == "run_console"


def test_granian_builds_the_console_in_each_process() -> None:
    argv = console_argv(Settings(api_server=ApiServer.GRANIAN), "127.0.0.1:8001", 1, 4)
    assert argv[-1] == f"{CONSOLE_MODULE}:application"
    assert "--factory" in argv
    assert argv[argv.index("--port") + 1] == "8001"


def test_gunicorn_and_uwsgi_serve_the_lazily_built_app() -> None:
    gunicorn = console_argv(Settings(api_server=ApiServer.GUNICORN), "0.0.0.0:8001", 2, 4)
    assert f"{CONSOLE_MODULE}:app" in gunicorn
    assert gunicorn[gunicorn.index("--workers") + 1] == "2"
    uwsgi = console_argv(Settings(api_server=ApiServer.UWSGI), "0.0.0.0:8001", 1, 4)
    assert uwsgi[uwsgi.index("--module") + 1] == CONSOLE_MODULE
    assert uwsgi[uwsgi.index("--callable") + 1] == "app"


def _named(name: str) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return [name.encode()]

    return app


def test_serve_sends_console_paths_to_the_console() -> None:
    app = with_console(_named("api"), _named("console"))

    def answered(path: str) -> bytes:
        return b"".join(app({"PATH_INFO": path}, lambda *args: None))

    assert answered("/console") == b"console"
    assert answered("/console/tenants") == b"console"
    assert answered("/consoles") == b"api"
    assert answered("/scim/v2/Users") == b"api"
    assert answered("/healthz") == b"api"
