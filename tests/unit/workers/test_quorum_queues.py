"""RabbitMQ quorum queues: declared only when asked for, only on RabbitMQ, whole-second delays."""

from __future__ import annotations

from typing import Any

import pytest

from scimflow.pipeline.settings import ConfigError, Settings
from scimflow.workers.celery_app import (
    DEFAULT_QUEUE,
    EVENTS_QUEUE,
    URGENT_QUEUE,
    make_celery,
    task_queues,
)
from scimflow.workers.dispatch import CeleryDispatcher
from scimflow.workers.events_main import events_worker_app
from scimflow.workers.runtime import WorkerRuntime

AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def test_queues_are_classic_by_default() -> None:
    queues = task_queues(Settings(broker_url=AMQP))
    assert [q.name for q in queues] == [URGENT_QUEUE, DEFAULT_QUEUE, EVENTS_QUEUE]
    assert all(not q.queue_arguments for q in queues)


def test_quorum_queues_on_a_topic_exchange_for_native_delayed_delivery() -> None:
    queues = task_queues(Settings(broker_url=AMQP, broker_quorum_queues=True))
    assert [q.name for q in queues] == [URGENT_QUEUE, DEFAULT_QUEUE, EVENTS_QUEUE]
    for queue in queues:
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.exchange.type == "topic" and queue.routing_key == queue.name


def test_quorum_queues_need_a_rabbitmq_broker() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:6379/0", broker_quorum_queues=True)
    with pytest.raises(ConfigError, match="SCIMFLOW_BROKER_QUORUM_QUEUES"):
        make_celery(settings)


@pytest.mark.parametrize(("quorum", "asked", "sent"), [
    (True, 0.2, 1), (True, 1.4, 2), (True, 3.0, 3), (False, 0.2, 0.2),
])
def test_delayed_doorbells_count_whole_seconds_only_on_quorum_queues(
    quorum: bool, asked: float, sent: float
) -> None:
    app = make_celery(Settings(broker_url=AMQP, broker_quorum_queues=quorum))
    calls: list[dict[str, Any]] = []
    app.send_task = lambda name, **options: calls.append(options)
    CeleryDispatcher(app).ring_later("tenant", asked)
    assert calls == [{"args": ["tenant"], "queue": DEFAULT_QUEUE, "countdown": sent}]


def test_the_events_worker_knows_only_its_own_queue() -> None:
    """On RabbitMQ, Celery binds every queue it knows to the delayed-delivery exchanges at
    start: the events worker must not need the drain queues to exist already."""
    settings = Settings(broker_url=AMQP, broker_quorum_queues=True)
    app = events_worker_app(WorkerRuntime(settings, role="events"))
    assert [q.name for q in app.conf.task_queues] == [EVENTS_QUEUE]
