"""Celery tasks: thin adapters from a message to one domain call (`scimflow.drain`,
`scimflow.sweep`, `scimflow.prune`, `scimflow.deliver`, `scimflow.deliver_due`), bound by
`register_tasks` to the worker's runtime and doorbell; no state of their own.
See docs/ARCHITECTURE.md ("The path through the workers", "Workers (`workers/`)").
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.services.drain import DrainReport
from scimflow.pipeline.store import heartbeats, journal, webhook_delivery
from scimflow.pipeline.store.db import unit_of_work
from scimflow.workers.celery_app import (
    DELIVER_DUE_TASK,
    DELIVER_TASK,
    DRAIN_TASK,
    PRUNE_TASK,
    SWEEP_TASK,
)
from scimflow.workers.dispatch import CeleryDispatcher
from scimflow.workers.metrics import record_delivery, report_batch
from scimflow.workers.runtime import WorkerRuntime

log = logging.getLogger("scimflow.worker")
# How long a sweep's doorbell for an endpoint is given before the sweep rings it again.
RING_AGAIN_AFTER_SECONDS = 60
# Batches per task: bounded so a task stays far inside its time limit and the visibility
# timeout, and a deprovisioning doorbell on the urgent queue gets a worker soon.
BATCHES_PER_TASK = 5

# Database blips are retried in-process for a couple of seconds; longer outages go back
# through the broker, never as a sleep inside the task: the drain is retried for as long as
# the outage lasts, after a random delay of up to 1, 2, 4 ... then 60 s (full jitter, so the
# workers' retries do not arrive together when the database comes back).
short_retry = retry(
    retry=retry_if_exception_type(Unavailable),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)
BROKER_RETRY: dict[str, Any] = {
    "autoretry_for": (Unavailable,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": None,
}


def register_tasks(app: Celery, runtime: WorkerRuntime, dispatcher: CeleryDispatcher) -> None:
    """Register the tasks on `app` (on no other app: they are not shared tasks)."""

    @app.task(name=DRAIN_TASK, shared=False, acks_late=True, **BROKER_RETRY)
    def drain(tenant_id: str) -> dict[str, int]:
        """Apply pending journal entries: those of every tenant, in fair turns."""
        return drain_for(tenant_id, runtime, dispatcher)

    @app.task(name=SWEEP_TASK, shared=False, acks_late=True)
    def sweep() -> int:
        """Ring for every tenant whose pending work has waited too long (a lost doorbell)."""
        return ring_stale_tenants(runtime, dispatcher)

    @app.task(name=PRUNE_TASK, shared=False, acks_late=True)
    def prune() -> dict[str, Any]:
        """Delete the journal entries, outbox events and dead letters past their retention."""
        return prune_history(runtime)

    @app.task(name=DELIVER_TASK, shared=False, acks_late=True, **BROKER_RETRY)
    def deliver(endpoint_id: str) -> dict[str, int]:
        """Post an endpoint's events past its cursor, in order."""
        return deliver_to(endpoint_id, runtime, dispatcher)

    @app.task(name=DELIVER_DUE_TASK, shared=False, acks_late=True)
    def deliver_due() -> int:
        """Ring for every endpoint with events waiting and nobody delivering them."""
        now = utc_now()
        # An endpoint rung by a sweep within the last minute still has its doorbell queued
        # (or in delivery): no second one while a backlog lasts.
        with unit_of_work(runtime.sessions) as session:
            endpoints = webhook_delivery.due_endpoints(
                session, now=now, rung_before=now - timedelta(seconds=RING_AGAIN_AFTER_SECONDS)
            )
        for endpoint_id in endpoints:
            dispatcher.deliver(endpoint_id)
        return len(endpoints)


def drain_for(tenant_id: str, runtime: WorkerRuntime,
              dispatcher: CeleryDispatcher) -> dict[str, int]:
    def deliver_events(batch: DrainReport) -> None:
        report_batch(batch)
        ring_deliveries(runtime.sessions, batch.event_tenants, dispatcher)

    report = short_retry(runtime.drainer.drain)(max_batches=BATCHES_PER_TASK,
                                                after_batch=deliver_events)
    _ring_again(tenant_id, report, dispatcher)
    log.info("drained tenant=%s applied=%d postponed=%d dead=%d", tenant_id,
             report.applied, report.postponed, report.dead)
    return {"applied": report.applied, "postponed": report.postponed, "dead": report.dead}


def _ring_again(tenant_id: str, report: DrainReport, dispatcher: CeleryDispatcher) -> None:
    if report.more_waiting or report.woken_tenants:
        dispatcher.ring(tenant_id)
    if report.retry_in is not None:
        dispatcher.ring_later(tenant_id, report.retry_in)


def ring_deliveries(sessions: sessionmaker[Session], tenants: Collection[str],
                    dispatcher: CeleryDispatcher) -> None:
    """New events: the endpoints of their tenants have something to deliver."""
    if not tenants:
        return
    with unit_of_work(sessions) as session:
        endpoints = webhook_delivery.enabled_endpoints(session, tenants)
    for endpoint_id in endpoints:
        dispatcher.deliver(endpoint_id)


def deliver_to(endpoint_id: str, runtime: WorkerRuntime,
               dispatcher: CeleryDispatcher) -> dict[str, int]:
    report = short_retry(runtime.deliverer.deliver)(endpoint_id)
    record_delivery(report)
    if report.more:
        dispatcher.deliver(endpoint_id)
    if report.disabled:
        log.warning("webhook endpoint %s disabled: %s", endpoint_id, report.disabled)
    return {"delivered": report.delivered, "failed": report.failed}


def ring_stale_tenants(runtime: WorkerRuntime, dispatcher: CeleryDispatcher) -> int:
    older_than = utc_now() - timedelta(seconds=runtime.settings.sweep_stale_seconds)
    with unit_of_work(runtime.sessions) as session:
        tenants = journal.stale_tenants(session, older_than=older_than)
        heartbeats.record(session, heartbeats.SWEEP, utc_now())
    for tenant_id in tenants:
        dispatcher.ring(tenant_id)
    return len(tenants)


def prune_history(runtime: WorkerRuntime) -> dict[str, Any]:
    report = runtime.pruner()
    log.info("pruned journal=%d outbox=%d dead_letters=%d",
             report.journal, report.outbox, report.dead_letters)
    return report.as_dict()
