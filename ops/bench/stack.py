"""Start the real stack for a benchmark (API, workers, beat) on local PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from scimflow.ops.processes import granian_argv, gunicorn_argv, uwsgi_argv
from scimflow.pipeline.settings import ApiServer

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Processes:
    workdir: Path
    env: dict[str, str]
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, argv: list[str], *,
              extra_env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            argv, env=self.env | (extra_env or {}), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def run(self, argv: list[str]) -> None:
        subprocess.run(argv, env=self.env, check=True, capture_output=True, timeout=300)

    def output(self, argv: list[str]) -> str:
        """What a short command printed on stdout (its stderr in the error if it failed)."""
        finished = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                                  timeout=300, check=False)
        if finished.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {finished.stderr.strip()}")
        return finished.stdout

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"scimflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def api_command(port: int, processes: int, threads: int) -> list[str]:
    """The production API process (`scimflow api`, under the server SCIMFLOW_API_SERVER names)."""
    return [str(BIN / "scimflow"), "api", "--bind", f"127.0.0.1:{port}",
            "--workers", str(processes), "--threads", str(threads)]


# Named, not imported: the baseline is a Falcon app, and only its server process loads it.
BASELINE_APP = "scimflow.ops.bench.baseline_app:app"


def baseline_command(port: int, processes: int, threads: int, server: ApiServer,
                     connections: int) -> list[str]:
    """The bare Falcon baseline, served by exactly the API's server and configuration."""
    bind = f"127.0.0.1:{port}"
    if server is ApiServer.GRANIAN:
        return granian_argv(BASELINE_APP, bind, processes, threads)
    if server is ApiServer.UWSGI:
        return uwsgi_argv(BASELINE_APP, bind, processes, connections)
    return gunicorn_argv(BASELINE_APP, bind, processes, threads, connections)
