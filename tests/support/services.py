"""Reachability of the external services the integration tests need.

Outside CI a missing PostgreSQL or Redis skips the tests that need it, with the reason; under
`CI=true` it is a failure, so a broken CI machine can never pass by skipping.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "SCIMFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", int(os.environ.get("SCIMFLOW_TEST_REDIS_PORT", "6379"))
RABBITMQ_URL = os.environ.get(
    "SCIMFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"
)


def require_tcp(service: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as error:
        unavailable(f"{service} is not reachable on {host}:{port} ({error})")


def unavailable(reason: str) -> NoReturn:
    """A required service or program is missing: a failure in CI, a skip with the reason
    elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires it.", pytrace=False)
    pytest.skip(f"{reason}; set CI=true to make this a failure.")


def require_postgres() -> None:
    url = make_url(POSTGRES_URL)
    require_tcp("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)


def require_redis() -> None:
    require_tcp("Redis", REDIS_HOST, REDIS_PORT)


def require_rabbitmq() -> None:
    url = urlsplit(RABBITMQ_URL)
    require_tcp("RabbitMQ", url.hostname or "127.0.0.1", url.port or 5672)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
