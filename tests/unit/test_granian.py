"""granian as `scimflow api` runs it: its command line, and the per-request deadline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from scimflow.api.granian_entry import RequestDeadline
from scimflow.ops.processes import GRANIAN_KEEPALIVE_SECONDS, api_argv, granian_argv
from scimflow.pipeline.settings import ApiServer, Settings


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_granian_is_the_default_server() -> None:
    assert Settings().api_server is ApiServer.GRANIAN
    assert Settings.from_env({"SCIMFLOW_API_SERVER": "gunicorn"}).api_server is ApiServer.GUNICORN


def test_the_production_app_is_built_in_each_worker_by_the_factory() -> None:
    argv = api_argv(Settings(), "0.0.0.0:8000", 2)
    assert argv[-1] == "scimflow.api.granian_entry:application"
    assert "--factory" in argv
    assert option(argv, "--interface") == "wsgi"
    assert (option(argv, "--workers"), option(argv, "--blocking-threads")) == ("2", "8")
    assert "--respawn-failed-workers" in argv


def test_threads_given_on_the_command_line_win() -> None:
    assert option(api_argv(Settings(), "0.0.0.0:8000", 2, 32), "--blocking-threads") == "32"


def test_idle_keepalive_connections_are_kept_longer_than_clients_reuse_them() -> None:
    argv = granian_argv("app:app", "127.0.0.1:8000", 1, 1)
    idle_ms = int(option(argv, "--http1-header-read-timeout"))
    assert idle_ms == GRANIAN_KEEPALIVE_SECONDS * 1000
    assert idle_ms >= 35_000


@pytest.mark.parametrize(("bind", "host", "port"), [
    ("0.0.0.0:8000", "0.0.0.0", "8000"), ("[::]:8443", "::", "8443"),
    ("localhost:9", "localhost", "9"),
])
def test_bind_is_split_into_host_and_port(bind: str, host: str, port: str) -> None:
    argv = granian_argv("app:app", bind, 1, 1)
    assert (option(argv, "--host"), option(argv, "--port")) == (host, port)


@pytest.mark.parametrize("bind", ["8000", "0.0.0.0:", "unix:/run/api.sock"])
def test_a_bind_without_host_and_port_is_refused(bind: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        granian_argv("app:app", bind, 1, 1)


# --- the request deadline -------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _deadline(app: Callable[..., Iterable[bytes]], clock: Clock,
              expired: list[str]) -> RequestDeadline:
    return RequestDeadline(app, 60.0, on_expired=lambda: expired.append("ended"), clock=clock)


def test_a_request_past_the_deadline_ends_the_process() -> None:
    clock, expired = Clock(), list[str]()
    seen: list[object] = []

    def stuck(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        clock.now += 61  # the watcher looks while this request is still running
        seen.append(guarded.overdue())
        seen.append(guarded.check())
        return [b""]

    guarded = _deadline(stuck, clock, expired)
    guarded({"REQUEST_METHOD": "POST", "PATH_INFO": "/scim/v2/Users"}, lambda *a: None)
    assert seen == [["POST /scim/v2/Users (61 s)"], True]
    assert expired == ["ended"]


def test_requests_within_the_deadline_or_finished_are_left_alone() -> None:
    clock, expired = Clock(), list[str]()
    checks: list[bool] = []

    def quick(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        clock.now += 59
        checks.append(guarded.check())
        return [b"ok"]

    def failing(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("boom")

    guarded = _deadline(quick, clock, expired)
    assert list(guarded({}, lambda *a: None)) == [b"ok"]
    clock.now += 1000
    checks.append(guarded.check())  # finished requests are forgotten
    broken = _deadline(failing, clock, expired)
    with pytest.raises(RuntimeError):
        broken({}, lambda *a: None)
    clock.now += 1000
    checks.append(broken.check())
    assert checks == [False, False, False]
    assert expired == []
