"""The doorbell of an operator command (`scimflow dead-letters replay`)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from celery import Celery

from scimflow.ops.processes import dispatcher_for
from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import DRAIN_TASK


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], threading.Thread]]:
    """The drains sent through any Celery app, and the thread each was sent from."""
    messages: list[tuple[str, list[str], threading.Thread]] = []

    def send_task(app: Celery, name: str, args: list[str], **options: Any) -> None:
        messages.append((name, args, threading.current_thread()))

    monkeypatch.setattr(Celery, "send_task", send_task)
    return messages


def test_a_commands_ring_is_sent_by_the_command_itself_before_it_can_exit(
    sent: list[tuple[str, list[str], threading.Thread]],
) -> None:
    dispatcher_for(Settings(broker_url="redis://127.0.0.1:6379/0")).ring("acme")
    assert sent == [(DRAIN_TASK, ["acme"], threading.current_thread())]


def test_the_embedded_mode_rings_no_broker(
    sent: list[tuple[str, list[str], threading.Thread]],
) -> None:
    dispatcher_for(Settings()).ring("acme")  # a running `scimflow serve` drains by itself
    assert sent == []
