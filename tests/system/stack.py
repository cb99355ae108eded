"""A whole scimflow deployment on this machine: the compose file's commands, run natively.

PostgreSQL gets a database of its own per stack, Redis a database number of its own (flushed
at start), and the API, the Celery workers and beat run as real processes with the commands of
docker-compose.yml, so what the tests prove is what `docker compose up` runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from scimflow.pipeline.passwords.crypto import generate_key
from tests.support.services import POSTGRES_URL, REDIS_HOST, REDIS_PORT, free_port
from tests.system.compose import service_command, with_option

VENV_BIN = Path(sys.executable).parent
# The production processes refuse to start without a key sealing passwords.
PASSWORD_KEY = generate_key()


@dataclass
class Stack:
    workdir: Path
    database_url: str
    broker_url: str
    api_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/scim/v2"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "SCIMFLOW_DATABASE_URL": self.database_url,
            "SCIMFLOW_BROKER_URL": self.broker_url,
            "SCIMFLOW_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
            # Fast enough for tests, still the production code paths.
            "SCIMFLOW_PASSWORD_KEY": PASSWORD_KEY,
            "SCIMFLOW_PASSWORD_MEMORY_KIB": "256",
            "SCIMFLOW_PASSWORD_TIME_COST": "1",
            "SCIMFLOW_SWEEP_INTERVAL_SECONDS": "1",
            "SCIMFLOW_SWEEP_STALE_SECONDS": "2",
            "SCIMFLOW_RETRY_BASE_SECONDS": "0.2",
            "SCIMFLOW_RETRY_MAX_SECONDS": "2",
            "SCIMFLOW_LOG_LEVEL": "WARNING",
            # Every test client is 127.0.0.1 and some send wrong tokens on purpose: the
            # back-off after failed authentications (tested on its own in tests/api and
            # tests/unit) would answer their later requests with 429.
            "SCIMFLOW_AUTH_FAILURE_LIMIT": "0",
            # No /metrics server per worker (tests that scrape one pick a free port): stacks of
            # consecutive tests would meet on the default port.
            "SCIMFLOW_WORKER_METRICS_PORT": "0",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        env.update(self.extra_env)
        return env

    # --- processes ---------------------------------------------------------------------

    def run(self, argv: list[str]) -> str:
        done = subprocess.run(argv, env=self.env, cwd=self.workdir, capture_output=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        return done.stdout.decode()

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, env=self.env, cwd=self.workdir, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def migrate(self) -> None:
        self.run(service_command("migrate"))

    def start_api(self) -> None:
        argv = with_option(service_command("api"), "--bind", f"127.0.0.1:{self.api_port}")
        self.spawn("api", argv)
        url = f"http://127.0.0.1:{self.api_port}/healthz"
        wait_until_serving(url, self.processes["api"], self.workdir / "api.log")

    def start_worker(self, name: str = "worker1", concurrency: int = 2) -> subprocess.Popen[bytes]:
        argv = with_option(service_command("worker"), "--concurrency", str(concurrency))
        return self.spawn(name, with_option(argv, "--hostname", f"{name}@%h"))

    def start_events_worker(self, name: str = "events", threads: int = 4) -> None:
        argv = with_option(service_command("events"), "--concurrency", str(threads))
        self.spawn(name, with_option(argv, "--hostname", f"{name}@%h"))

    def start_beat(self) -> None:
        schedule = str(self.workdir / "beat-schedule")
        self.spawn("beat", with_option(service_command("beat"), "--schedule", schedule))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a process and its whole group (a Celery worker and its pool children)."""
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in list(self.processes.items()):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            self.processes.pop(name)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    # --- state ---------------------------------------------------------------------------

    def create_tenant(self, name: str) -> dict[str, str]:
        created: dict[str, str] = json.loads(
            self.run(["scimflow", "tenant", "create", name, "--json"])
        )
        return created

    def client(self, token: str, **options: Any) -> httpx.Client:
        return scim_client(self.base_url, token, **options)

    def sql(self, query: str, **params: Any) -> list[Any]:
        return run_sql(self.database_url, query, **params)

    def backlog(self) -> int:
        return int(self.sql("SELECT count(*) FROM journal WHERE status = 'pending'")[0][0])

    def wait_until_applied(self, timeout: float = 120) -> None:
        """Wait until nothing is pending in the journal (postponed entries included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.backlog() == 0:
                return
            time.sleep(0.25)
        raise AssertionError(f"backlog still {self.backlog()} after {timeout}s")


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    """Wait for `url` to answer 200, failing at once (with the log) if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


@contextmanager
def postgres_database(prefix: str = "scimflow_sys") -> Iterator[str]:
    """A fresh PostgreSQL database for one stack, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    _execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _execute(engine: Engine, statement: str) -> None:
    with engine.connect() as connection:
        connection.execute(text(statement))


def redis_url(db: int) -> str:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    client.close()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


def stop_serving(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, which `scimflow serve` handles by closing the server and stopping its worker."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def scim_client(base_url: str, token: str, **options: Any) -> httpx.Client:
    """An HTTP client speaking SCIM JSON with a tenant's bearer token."""
    return httpx.Client(
        base_url=base_url, timeout=options.pop("timeout", 30),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        **options,
    )


def run_sql(database_url: str, query: str, **params: Any) -> list[Any]:
    """The rows of one query, on a connection of its own."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query), params))
    finally:
        engine.dispose()


@contextmanager
def running_stack(
    workdir: Path, *, workers: int = 1, concurrency: int = 2, redis_db: int = 9,
    broker_url: str | None = None, extra_env: dict[str, str] | None = None,
    database_prefix: str = "scimflow_sys",
) -> Iterator[Stack]:
    with postgres_database(database_prefix) as database_url:
        stack = Stack(workdir, database_url, broker_url or redis_url(redis_db), free_port(),
                      extra_env or {})
        try:
            stack.migrate()
            stack.start_api()
            for index in range(workers):
                stack.start_worker(f"worker{index + 1}", concurrency)
            stack.start_beat()
            yield stack
        finally:
            stack.stop()
