"""Celery tasks: thin adapters from a message to one domain call.

`scimflow.drain` is a doorbell: it carries the id of the tenant that rang, never the work.
It drains in bounded batches, then rings again if more is waiting, so no task holds a worker
slot for long. Every batch gives each tenant with waiting work its fair share (store/claim.py),
so a drain rung by one tenant's initial sync also serves every other tenant, whatever the
order of the queue. `scimflow.sweep` (beat) rings for work whose doorbell was lost;
`scimflow.prune` (beat) deletes the history past its retention (pipeline/store/retention.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_init, worker_process_init
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from scimflow.pipeline.errors import Unavailable
from scimflow.pipeline.passwords.setup import require_password_key
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.services.drain import DrainReport
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import heartbeats, journal
from scimflow.pipeline.store.db import unit_of_work
from scimflow.workers.celery_app import DRAIN_TASK, PRUNE_TASK, SWEEP_TASK
from scimflow.workers.dispatch import CeleryDispatcher
from scimflow.workers.runtime import WorkerRuntime

log = logging.getLogger("scimflow.worker")
runtime = WorkerRuntime(Settings.from_env())
# Batches per task: bounded so a task stays far inside its time limit and the visibility
# timeout, and a deprovisioning doorbell on the urgent queue gets a worker soon.
BATCHES_PER_TASK = 5


@worker_init.connect
def _require_password_key(**_: object) -> None:
    # A worker without the key would dead-letter every password it meets: refuse to start.
    require_password_key(runtime.settings, "`scimflow worker`")


@worker_process_init.connect
def _reset_after_fork(**_: object) -> None:
    runtime.after_fork()


# Database blips are retried in-process for a couple of seconds; longer outages go back
# through the broker (Celery retry with backoff), never as a sleep inside the task.
_short_retry = retry(
    retry=retry_if_exception_type(Unavailable),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)


@shared_task(bind=True, name=DRAIN_TASK, max_retries=None, acks_late=True)
def drain(self: Task, tenant_id: str) -> dict[str, int]:
    """Apply pending journal entries: those of every tenant, in fair turns."""
    try:
        report = _short_retry(runtime.drainer.drain)(max_batches=BATCHES_PER_TASK)
    except Unavailable as ex:
        countdown = min(60, 2 ** min(self.request.retries, 6))
        raise self.retry(exc=ex, countdown=countdown) from ex
    _ring_again(tenant_id, report)
    log.info("drained tenant=%s applied=%d postponed=%d dead=%d", tenant_id,
             report.applied, report.postponed, report.dead)
    return {"applied": report.applied, "postponed": report.postponed, "dead": report.dead}


def _ring_again(tenant_id: str, report: DrainReport) -> None:
    dispatcher = CeleryDispatcher(drain.app)
    if report.more_waiting or report.woken_tenants:
        dispatcher.ring(tenant_id)
    if report.retry_in is not None:
        dispatcher.ring_later(tenant_id, report.retry_in)


@shared_task(name=SWEEP_TASK, acks_late=True)
def sweep() -> int:
    """Ring for every tenant whose pending work has waited too long (a lost doorbell)."""
    settings = runtime.settings
    older_than = utc_now() - timedelta(seconds=settings.sweep_stale_seconds)
    with unit_of_work(runtime.sessions) as session:
        tenants = journal.stale_tenants(session, older_than=older_than)
        heartbeats.record(session, heartbeats.SWEEP, utc_now())
    dispatcher = CeleryDispatcher(sweep.app)
    for tenant_id in tenants:
        dispatcher.ring(tenant_id)
    return len(tenants)


@shared_task(name=PRUNE_TASK, acks_late=True)
def prune() -> dict[str, Any]:
    """Delete the journal entries, outbox events and dead letters past their retention."""
    report = runtime.pruner()
    log.info("pruned journal=%d outbox=%d dead_letters=%d",
             report.journal, report.outbox, report.dead_letters)
    return report.as_dict()
