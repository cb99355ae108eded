"""Configuration, read once from the environment into one frozen object.

`Settings.from_env()` is the only place that reads `os.environ`; everything else receives a
`Settings`. Every variable is documented in the README's configuration reference.
See docs/ARCHITECTURE.md ("Configuration").
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar

from scimflow.pipeline.passwords.crypto import PasswordPolicy

T = TypeVar("T")

DEFAULT_DATABASE_URL = "sqlite:///scimflow.sqlite3"
# Broker URL schemes of RabbitMQ (kombu's py-amqp transport).
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


class LogFormat(StrEnum):
    """How every process writes its log lines (pipeline/logs.py)."""

    TEXT = "text"  # for people at a terminal
    JSON = "json"  # one object per line, for log shippers


class ApiServer(StrEnum):
    """The HTTP server `scimflow api` runs (ops/processes.py)."""

    GUNICORN = "gunicorn"  # gthread: any number of keep-alive connections per process
    UWSGI = "uwsgi"  # C server, far less CPU per request; one keep-alive connection per thread
    GRANIAN = "granian"  # Rust HTTP, WSGI on a thread pool; any number of keep-alive connections


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of scimflow, with the default a single machine runs well with."""

    # Where the directory, the journal and the tenants live.
    database_url: str = DEFAULT_DATABASE_URL
    # Celery broker; empty means the embedded mode: workers run in-process, no broker.
    broker_url: str = ""
    # Absolute base URL clients reach the API on; used for Location and meta.location.
    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 1_048_576
    # API connection pool: small, and quick to give up (a full pool answers 503, not a stall).
    api_pool_size: int = 8
    api_pool_overflow: int = 0
    api_pool_timeout: float = 2.0
    # How long an API process remembers a token that authenticated (a revocation takes
    # effect within this time); 0 checks the database on every request.
    token_cache_seconds: float = 5.0
    # Each prefork worker child holds one connection.
    worker_concurrency: int = 2
    # Process counts the connection budget is computed for (`scimflow connections`).
    api_processes: int = 2
    # gunicorn's request threads per API process: one pooled connection each, so none waits
    # for one. (uWSGI runs `api_worker_connections` threads; creates share one connection per
    # batch there, and 0 requests waited out the pool timeout in the benchmark.)
    api_threads: int = 8
    # Keep-alive connections one API process holds at most (see ops/processes.py); under
    # uWSGI, which gives each connection a thread, also its thread count.
    api_worker_connections: int = 32
    api_server: ApiServer = ApiServer.GRANIAN
    # gunicorn reads each request whole before a thread serves it (api/buffered_worker.py):
    # its head must arrive within the header timeout, its body within the body timeout.
    api_header_timeout_seconds: float = 10.0
    api_body_timeout_seconds: float = 20.0
    # Connections one API process holds while their request is still arriving; when full,
    # the oldest is closed. They do not count against `api_worker_connections`.
    api_reading_connections: int = 256
    # Bearer-token failures from one client address within the window before its unknown
    # tokens get 429 for a window (no database query); 0 turns the back-off off.
    auth_failure_limit: int = 20
    auth_failure_window_seconds: float = 60.0
    # gunicorn's access log: off by default, since every request line is written under one
    # lock; the application logs each request's id and failures itself.
    access_log: bool = False
    worker_replicas: int = 1
    # Connecting through PgBouncer in transaction mode: no server-side prepared statements.
    pgbouncer: bool = False
    password_policy: PasswordPolicy = PasswordPolicy.HASH
    # Seals passwords between the API and the workers (pipeline/passwords/crypto.py): one or more
    # keys, comma-separated, newest first. Required by the production processes when the
    # policy is `hash`; the embedded server keeps one beside its SQLite file.
    password_key: str = ""
    # argon2id parameters of the workers' hashes (OWASP's minimum by default).
    password_memory_kib: int = 19_456
    password_time_cost: int = 2
    password_parallelism: int = 1
    # Worker batching and retries.
    drain_batch_size: int = 200
    reference_retry_limit: int = 10
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    # Sweeper (Celery beat): how often, and how old a pending entry must be to be re-rung.
    sweep_interval_seconds: float = 15.0
    sweep_stale_seconds: float = 10.0
    # Retention (pipeline/store/retention.py): applied journal entries, outbox events (and
    # webhook attempts) and dead letters (replayed or not) are deleted this many days after
    # they were applied, written or recorded, except events an enabled webhook endpoint has
    # not delivered yet; 0 keeps them forever. Beat (or the embedded worker)
    # prunes every `retention_interval_seconds`, in batches of `retention_batch_size` rows,
    # each batch its own short transaction.
    retention_journal_days: int = 7
    retention_outbox_days: int = 7
    retention_dead_letter_days: int = 30
    retention_batch_size: int = 1000
    # A pause between two batches: pruning takes a small, steady share of the database (about
    # 7 ms of work per 1,000 rows) instead of a burst while a sync is being acknowledged.
    retention_pause_seconds: float = 0.05
    retention_interval_seconds: float = 300.0
    # Work due for this long with no drain finished in this time means no worker is draining:
    # `/readyz` answers 503 and `scimflow status` warns (pipeline/services/liveness.py).
    stall_seconds: float = 120.0
    # Celery: a task must finish well within the Redis visibility timeout.
    task_time_limit_seconds: int = 300
    broker_visibility_timeout_seconds: int = 3600
    # RabbitMQ: declare scimflow's queues as quorum queues (replicated, durable across a node
    # loss) instead of classic ones. Needs an amqp:// broker; delayed doorbells then use
    # Celery's native delayed delivery rather than waiting in a worker's memory.
    broker_quorum_queues: bool = False
    filter_max_results: int = 1000
    # Admission control (429 + Retry-After): pending journal entries per tenant and in total,
    # and concurrent writes per tenant in one API process.
    tenant_backlog_limit: int = 50_000
    global_backlog_limit: int = 250_000
    tenant_in_flight_limit: int = 48
    # Webhook delivery (pipeline/services/delivery.py). Destinations on loopback, link-local
    # and private networks are refused unless allowed (they are how SSRF reaches internal
    # services); each attempt must answer within the timeout; an endpoint failing for this
    # many hours is disabled with the reason.
    webhook_allow_private_networks: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_disable_after_hours: float = 24.0
    # Backoff between attempts of a failing endpoint: from the base, doubling to the cap,
    # each 50-100 % of that at random (about 30 attempts over a day by default).
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    # Events read per step, and how many are in flight at once per endpoint (in order per
    # resource: one resource's events always go one after the other, on one connection).
    webhook_batch_size: int = 500
    webhook_concurrency: int = 8
    # Delivery tasks one `scimflow events-worker` runs at once (threads: delivery waits on
    # the network, and a slow endpoint must hold one thread, not a process).
    webhook_workers: int = 4
    # How often beat looks for endpoints with events waiting (a lost doorbell, a killed
    # worker, a backoff that ended).
    webhook_sweep_seconds: float = 5.0
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    # Prometheus: the directory the processes of one host share their figures through
    # (prometheus-client's multiprocess mode); empty means a private one per process tree.
    metrics_dir: str = ""
    # Where `scimflow worker` and `scimflow events-worker` serve /metrics (0: not at all).
    worker_metrics_port: int = 9808
    # The operator console (`scimflow console`): how long a login lasts, and whether its
    # cookie is sent only over HTTPS (turn off only for a console on loopback without TLS).
    console_session_hours: float = 12.0
    console_secure_cookie: bool = True
    # `user:password` Flower requires (`scimflow flower` refuses to start without one).
    flower_basic_auth: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `SCIMFLOW_<FIELD>` variables; unset ones keep their default.

        `SCIMFLOW_<FIELD>_FILE` names a file holding the value instead (Docker and compose
        secrets, systemd credentials), so a password never has to sit in the environment.
        Raises ConfigError, naming the variable, for a value that cannot be used.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = _raw_value(env, f"SCIMFLOW_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = _convert(field.name, raw, _CONVERTERS[field.name])
        return cls(**values)

    def require_broker(self, who: str) -> None:
        """The production processes need a broker: without one, writes would never apply."""
        if self.embedded:
            raise ConfigError(
                f"SCIMFLOW_BROKER_URL is not set: {who} needs a broker "
                "(e.g. redis://127.0.0.1:6379/0); `scimflow serve` runs without one"
            )
        if self.broker_quorum_queues and not self.broker_url.startswith(AMQP_SCHEMES):
            raise ConfigError(
                "SCIMFLOW_BROKER_QUORUM_QUEUES needs a RabbitMQ broker "
                "(SCIMFLOW_BROKER_URL=amqp://...): quorum queues are a RabbitMQ queue type"
            )

    @property
    def embedded(self) -> bool:
        return not self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def _raw_value(env: Mapping[str, str], name: str) -> str | None:
    path = env.get(f"{name}_FILE")
    if not path:
        return env.get(name)
    if env.get(name):
        raise ConfigError(f"{name} and {name}_FILE are both set: keep one")
    try:
        # Secret files usually end with a newline; a value never does.
        return Path(path).read_text("utf-8").rstrip("\r\n")
    except OSError as ex:
        raise ConfigError(f"{name}_FILE={path!r} cannot be read: {ex.strerror}") from ex


def _convert(name: str, raw: str, convert: Callable[[str], T]) -> T:
    try:
        return convert(raw)
    except ValueError as ex:
        raise ConfigError(f"SCIMFLOW_{name.upper()}={raw!r} is invalid: {ex}") from ex


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _boolean(raw: str) -> bool:
    if raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def _choice(kind: type[Enum]) -> Callable[[str], Enum]:
    def convert(raw: str) -> Enum:
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"expected one of {', '.join(str(m.value) for m in kind)}") from None

    return convert


def _converter(default: Any) -> Callable[[str], Any]:
    if isinstance(default, Enum):
        return _choice(type(default))
    if isinstance(default, bool):
        return _boolean
    if isinstance(default, int):
        return _integer
    if isinstance(default, float):
        return _number
    return str


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    field.name: _converter(field.default) for field in fields(Settings)
}
