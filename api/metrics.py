"""Prometheus metrics of the API: what every request did, and the backlog per tenant.

`MetricsMiddleware` counts requests by method, resource type and status, times the
acknowledgement of writes (request received -> durable acknowledgement) and counts the
refusals (429: admission or throttling, 503: no database connection in time). The metric
objects write to prometheus-client's multiprocess files when `PROMETHEUS_MULTIPROC_DIR` is set
(`scimflow api` sets it before the server forks its processes: ops/processes.py), so /metrics in
any process answers for all of them. `BacklogCollector` reads the database at scrape time, in
one grouped query, remembered for a second or two so that several scrapers cost one query.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scimflow.api.services import API_PREFIX
from scimflow.pipeline import logs
from scimflow.pipeline.ports import Clock, utc_now

log = logging.getLogger("scimflow.api")

METRICS_PATH = "/metrics"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HTTP_METHODS = WRITE_METHODS | {"GET", "HEAD", "OPTIONS"}
# Resource types named in labels; any other path is "other" (a label per path would let any
# client grow the series without bound).
SCIM_TYPES = frozenset({"Users", "Groups", ".search", "ServiceProviderConfig",
                        "ResourceTypes", "Schemas", "Me", "Bulk"})
OWN_PATHS = {"/healthz": "healthz", "/readyz": "readyz", METRICS_PATH: "metrics",
             "/events": "events", "/events/poll": "events", "/events/jwks.json": "events"}
# A write is acknowledged in milliseconds; the tail goes up to the pool timeout and beyond.
ACK_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

REQUESTS = Counter("scimflow_http_requests", "HTTP requests answered by the API",
                   ["method", "resource_type", "status"])
ACK_LATENCY = Histogram("scimflow_ack_latency_seconds",
                        "Request received to durable acknowledgement, for SCIM writes",
                        ["method", "resource_type"], buckets=ACK_BUCKETS)
ADMISSIONS_REFUSED = Counter("scimflow_admissions_refused",
                             "Requests refused with 429 (admission control, throttling)",
                             ["resource_type"])
POOL_TIMEOUTS = Counter("scimflow_pool_timeouts",
                        "Requests answered 503 (no database connection in time, outage)",
                        ["resource_type"])


def resource_type_of(path: str) -> str:
    """The label of a path: a SCIM resource type or endpoint, "app", "events" or "other"."""
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        first = path[len(API_PREFIX) + 1:].split("/", 1)[0]
        return first if first in SCIM_TYPES else "other"
    if path.startswith("/app/"):
        return "app"
    return OWN_PATHS.get(path, "other")


class MetricsMiddleware:
    """Counts and times every request (first in the chain: its response hook runs last, when
    the status is final)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.received = time.perf_counter()

    def process_resource(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, params: dict[str, object]) -> None:
        tenant = getattr(req.context, "tenant", None)
        if tenant is not None:
            # Dropped with the request id when the request ends (api/middleware.py).
            logs.bind(tenant=tenant.id)

    def process_response(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, req_succeeded: bool) -> None:
        started = getattr(req.context, "received", None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        tenant = getattr(req.context, "tenant", None)
        record_request(req.method, req.path, resp.status_code, seconds,
                       authenticated=tenant is not None)
        if (req.method in WRITE_METHODS and resp.status_code < 300
                and resource_type_of(req.path) in SCIM_TYPES):
            # The API's half of a write's story; the worker's apply line carries the same
            # request id (pipeline/logs.py binds it and the tenant).
            log.info("acknowledged %s %s", req.method, req.path,
                     extra={"resource_id": _resource_id(req, resp),
                            "latency_ms": round(seconds * 1000, 1)})


def record_request(method: str, path: str, status: int, seconds: float, *,
                   authenticated: bool) -> None:
    """Count one answered request. Only refusals of a tenant's own requests count as
    admission refusals (not the throttle's 429s for unknown tokens), and only SCIM and
    application requests as pool timeouts (not /readyz saying the pipeline is stalled)."""
    resource_type = resource_type_of(path)
    # Any other method is one label: a client cannot grow the series by inventing methods.
    label = method if method in HTTP_METHODS else "other"
    REQUESTS.labels(label, resource_type, str(status)).inc()
    if status == 429 and authenticated:
        ADMISSIONS_REFUSED.labels(resource_type).inc()
    elif status == 503 and (resource_type in SCIM_TYPES or resource_type == "app"):
        POOL_TIMEOUTS.labels(resource_type).inc()
    elif label in WRITE_METHODS and status < 300 and resource_type in SCIM_TYPES:
        ACK_LATENCY.labels(label, resource_type).observe(seconds)


def _resource_id(req: falcon.Request, resp: falcon.Response) -> str | None:
    """The written resource's id: the path's last segment, or a create's Location."""
    location = resp.location if req.method == "POST" else req.path
    return location.rstrip("/").rsplit("/", 1)[-1] if location else None


@dataclass(frozen=True, slots=True)
class TenantBacklog:
    pending: int
    oldest_pending_at: datetime


BacklogReader = Callable[[], Mapping[str, TenantBacklog]]


class BacklogCollector(Collector):
    """Pending journal entries and the age of the oldest, per tenant (by name), read from the
    database at scrape time; a failed read yields nothing rather than failing the scrape."""

    def __init__(self, read: BacklogReader, *, cache_seconds: float = 1.5,
                 clock: Clock = utc_now, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, Mapping[str, TenantBacklog]] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        backlog = GaugeMetricFamily("scimflow_backlog", "Pending journal entries per tenant",
                                    labels=["tenant"])
        oldest = GaugeMetricFamily("scimflow_oldest_pending_seconds",
                                   "Age of the oldest pending journal entry per tenant",
                                   labels=["tenant"])
        now = self._clock()
        for tenant, figures in sorted(self._figures().items()):
            backlog.add_metric([tenant], figures.pending)
            oldest.add_metric([tenant], max(0.0, (now - figures.oldest_pending_at)
                                            .total_seconds()))
        return [backlog, oldest]

    def _figures(self) -> Mapping[str, TenantBacklog]:
        with self._lock:  # concurrent scrapes wait for one query instead of running several
            now = self._monotonic()
            if self._cached is None or now - self._cached[0] >= self._cache_seconds:
                self._cached = (now, self._read_safely())
            return self._cached[1]

    def _read_safely(self) -> Mapping[str, TenantBacklog]:
        try:
            return self._read()
        except Exception:  # the database is down: /readyz says so; /metrics still answers
            return {}


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """What /metrics serves: every process's figures (multiprocess mode) or this process's,
    plus the collectors that read at scrape time."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Everything())
    for collector in extra:
        registry.register(collector)
    return registry


class _Everything(Collector):
    """This process's default registry, inside another registry (a collector is registered
    in one registry: the scrape-time collectors go in a fresh one per app)."""

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        return REGISTRY.collect()


class MetricsEndpoint:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = generate_latest(self._registry)
        resp.content_type = CONTENT_TYPE_LATEST
