"""System tests: the whole service as separate real processes on PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require_postgres, require_redis
from tests.system.stack import Stack, running_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """API (gunicorn), one Celery worker (2 processes) and beat, on a fresh database."""
    require_postgres()
    require_redis()
    with running_stack(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for all the tests of a module, each test working in tenants of its own.

    It uses a Redis database of its own (10), so it never shares a broker with `stack`.
    """
    require_postgres()
    require_redis()
    with running_stack(tmp_path_factory.mktemp("stack"), redis_db=10) as running:
        yield running
