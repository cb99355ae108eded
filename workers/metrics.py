"""Prometheus metrics of the workers: applied commands, batch sizes, dead letters, deprovision
latency and webhook deliveries, and the /metrics server of the worker's main process; with the
figures of a drain batch, its apply lines (`report_batch`: Celery's workers and the embedded
one alike).

Prefork children write to prometheus-client's multiprocess files (`PROMETHEUS_MULTIPROC_DIR`,
set by `scimflow worker` before Celery starts: ops/processes.py); the main process serves them
all (`start_metrics_server`) and marks a child's files dead when the child ends.
See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

import logging
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client import start_http_server as _start_http_server

from scimflow.pipeline.services.delivery import DeliveryReport
from scimflow.pipeline.services.drain import DrainReport

log = logging.getLogger("scimflow.worker")

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Deprovisioning is promised in seconds; the tail shows a backlog or an outage.
DEPROVISION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

APPLIED = Counter("scimflow_applied_commands", "Journal entries applied",
                  ["resource_type", "kind"])
BATCH_SIZE = Histogram("scimflow_batch_size", "Journal entries applied per drain batch",
                       buckets=BATCH_BUCKETS)
DEAD_LETTERS = Counter("scimflow_dead_letters", "Journal entries set aside as dead letters")
DEPROVISION_LATENCY = Histogram(
    "scimflow_deprovision_latency_seconds",
    "Acknowledged to applied, for deactivations and deletes", buckets=DEPROVISION_BUCKETS)
WEBHOOK_DELIVERIES = Counter("scimflow_webhook_deliveries", "Webhook deliveries by outcome",
                             ["outcome"])


def record_batch(report: DrainReport) -> None:
    """The figures of one committed drain batch."""
    if report.resources == 0:
        return  # an empty claim: no batch
    BATCH_SIZE.observe(report.applied)
    if report.dead:
        DEAD_LETTERS.inc(report.dead)
    for entry in report.applied_entries:
        APPLIED.labels(entry.resource_type, entry.kind).inc()
        if entry.deprovisions:
            DEPROVISION_LATENCY.observe(max(0.0, entry.latency_seconds))


def report_batch(report: DrainReport) -> None:
    """Count a committed batch and log a line per applied entry, naming the API request that
    acknowledged it, so one request id leads from the API's log to the worker's."""
    record_batch(report)
    if not log.isEnabledFor(logging.INFO):
        return
    for entry in report.applied_entries:
        log.info("applied %s %s %s (journal entry %d)", entry.kind, entry.resource_type,
                 entry.resource_id, entry.seq,
                 extra={"request_id": entry.request_id or None, "tenant": entry.tenant_id,
                        "resource_id": entry.resource_id,
                        "latency_ms": round(entry.latency_seconds * 1000, 1)})


def record_delivery(report: DeliveryReport) -> None:
    if report.delivered:
        WEBHOOK_DELIVERIES.labels("delivered").inc(report.delivered)
    if report.failed:
        WEBHOOK_DELIVERIES.labels("failed").inc(report.failed)
    if report.disabled:
        WEBHOOK_DELIVERIES.labels("endpoint_disabled").inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def start_metrics_server(port: int) -> bool:
    """Serve /metrics of every process of this worker on `port` (0: not at all).

    Only with the multiprocess directory: without it the pool children's figures would stay
    in the children. A port already taken is logged, not fatal: the worker's job is to apply.
    """
    if port == 0:
        return False
    if multiprocess_dir() is None:
        log.warning("no PROMETHEUS_MULTIPROC_DIR (start the worker with `scimflow worker`): "
                    "not serving /metrics")
        return False
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    try:
        _start_http_server(port, registry=registry)
    except OSError as ex:
        log.error("cannot serve /metrics on port %d (%s); the worker runs without it", port, ex)
        return False
    log.info("serving /metrics on port %d", port)
    return True


def mark_process_dead(pid: int) -> None:
    """Forget a finished process's live gauges (its counters stay summed in)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
