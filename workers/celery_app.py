"""The Celery application: configuration only, built from Settings (no module-level state).

Every choice protects "nothing lost, nothing duplicated"; the hard time limits stay well under
the Redis visibility timeout so that a long task is never redelivered while it still runs.
See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

from celery import Celery
from kombu.entity import Exchange, Queue

from scimflow.pipeline.settings import Settings
from scimflow.workers.redis_transport import TRANSPORT as REDIS_TRANSPORT

DRAIN_TASK = "scimflow.drain"
SWEEP_TASK = "scimflow.sweep"
PRUNE_TASK = "scimflow.prune"
DELIVER_TASK = "scimflow.deliver"
DELIVER_DUE_TASK = "scimflow.deliver_due"
DEFAULT_QUEUE = "scimflow"
URGENT_QUEUE = "scimflow.urgent"
# Webhook deliveries: consumed by `scimflow events-worker`, never by the workers that apply.
EVENTS_QUEUE = "scimflow.events"


def make_celery(settings: Settings) -> Celery:
    # Without a broker Celery would quietly fall back to amqp://localhost: refuse instead.
    settings.require_broker("the Celery application")
    app = Celery("scimflow", broker=settings.broker_url)
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # A worker must outlive a Redis restart (workers/redis_transport.py).
        app.conf.broker_transport = REDIS_TRANSPORT
    time_limit = settings.task_time_limit_seconds
    if time_limit * 2 >= settings.broker_visibility_timeout_seconds:
        raise ValueError("task_time_limit_seconds must stay well below the visibility timeout")
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=time_limit,
        task_soft_time_limit=max(time_limit - 30, time_limit // 2),
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            # A broker outage must cost a request milliseconds, not the default retries.
            "socket_timeout": 2,
            "socket_connect_timeout": 1,
        },
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2,
        },
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        task_default_queue=DEFAULT_QUEUE,
        # Deprovisioning doorbells have their own queue, consumed first by every worker.
        task_queues=task_queues(settings),
        task_routes={DELIVER_TASK: {"queue": EVENTS_QUEUE},
                     DELIVER_DUE_TASK: {"queue": EVENTS_QUEUE}},
        beat_schedule={
            "sweep": {"task": SWEEP_TASK, "schedule": settings.sweep_interval_seconds},
            "prune": {"task": PRUNE_TASK, "schedule": settings.retention_interval_seconds},
            "deliver-due": {"task": DELIVER_DUE_TASK,
                            "schedule": settings.webhook_sweep_seconds},
        },
    )
    return app


def task_queues(settings: Settings) -> list[Queue]:
    """scimflow's queues: classic by default, RabbitMQ quorum queues when configured.

    On quorum queues Celery turns global QoS off (they do not support it) and sends countdowns
    through RabbitMQ's native delayed delivery, which only routes through topic exchanges: a
    doorbell rung for later must not sit in a worker's prefetch until it is due.
    """
    if not settings.broker_quorum_queues:
        return [Queue(URGENT_QUEUE), Queue(DEFAULT_QUEUE), Queue(EVENTS_QUEUE)]
    exchange = Exchange(DEFAULT_QUEUE, type="topic")
    quorum = {"x-queue-type": "quorum"}
    return [Queue(name, exchange, routing_key=name, queue_arguments=quorum)
            for name in (URGENT_QUEUE, DEFAULT_QUEUE, EVENTS_QUEUE)]


def delays_in_whole_seconds(app: Celery) -> bool:
    """Whether countdowns go through native delayed delivery, which counts whole seconds.

    Celery truncates such a countdown to whole seconds and refuses one under a second, so a
    doorbell rung for 0.4 s from now would not be sent at all.
    """
    return any((queue.queue_arguments or {}).get("x-queue-type") == "quorum"
               for queue in app.conf.task_queues or ())
