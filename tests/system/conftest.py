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
