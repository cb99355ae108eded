"""A doorbell is best-effort: a broker outage never fails (or stalls) the committed request."""

from __future__ import annotations

import time

from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import make_celery
from scimflow.workers.dispatch import CeleryDispatcher
from tests.support.services import free_port


def test_ringing_with_the_broker_down_returns_quickly_without_raising() -> None:
    settings = Settings(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    dispatcher = CeleryDispatcher(make_celery(settings))
    started = time.monotonic()
    dispatcher.ring("tenant")
    dispatcher.ring("tenant", urgent=True)
    assert time.monotonic() - started < 10
