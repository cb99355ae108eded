"""A doorbell is best-effort: a broker outage never fails (or stalls) the committed request;
the API's doorbell sends from its own thread, an operator command's before it returns."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from celery import Celery

from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import DRAIN_TASK, make_celery
from scimflow.workers.dispatch import CeleryDispatcher, broker_dispatcher
from tests.support.services import free_port

REDIS = "redis://127.0.0.1:6379/0"


def test_ringing_with_the_broker_down_returns_quickly_without_raising() -> None:
    settings = Settings(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    dispatcher = CeleryDispatcher(make_celery(settings))
    started = time.monotonic()
    dispatcher.ring("tenant")
    dispatcher.ring("tenant", urgent=True)
    assert time.monotonic() - started < 10


class RecordingCelery:
    """Stands in for Celery's `send_task`: which drains were sent, and from which thread."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[str], threading.Thread]] = []
        self.any_sent = threading.Event()

    def send_task(self, name: str, args: list[str], **options: Any) -> None:
        assert name == DRAIN_TASK
        self.sent.append((args, threading.current_thread()))
        self.any_sent.set()


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> RecordingCelery:
    recording = RecordingCelery()
    monkeypatch.setattr(Celery, "send_task", recording.send_task)
    return recording


def test_an_uncoalesced_doorbell_has_sent_its_ring_when_ring_returns(
    broker: RecordingCelery,
) -> None:
    dispatcher = broker_dispatcher(Settings(broker_url=REDIS), coalesce=False)
    dispatcher.ring("acme")
    assert broker.sent == [(["acme"], threading.current_thread())]


def test_a_coalesced_doorbell_sends_from_its_own_thread(broker: RecordingCelery) -> None:
    dispatcher = broker_dispatcher(Settings(broker_url=REDIS), coalesce=True)
    dispatcher.ring("acme")
    assert broker.any_sent.wait(5)
    [(args, sender)] = broker.sent
    assert args == ["acme"] and sender is not threading.current_thread()
