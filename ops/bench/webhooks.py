"""Webhook delivery in the sync: the receiver, the endpoint, the events worker, the figures.

The benchmark registers an endpoint for its tenant (`scimflow webhook add`) pointing at its own
receiver (`ops/bench/receiver.py`, a process of its own), starts `scimflow events-worker`, and
measures, from what the receiver recorded:

- deprovision -> webhook: per deactivation PATCH, from the moment the client received its 2xx
  to the arrival of that user's `user.deprovisioned` event (both wall-clock, same machine);
- delivery throughput: distinct events per second from the first arrival to the last, whether
  every outbox event of the tenant arrived, how many arrived more than once, and the lag of
  the last arrival behind the last apply;
- the delivery of a backlog: once the sync is delivered, the endpoint is replayed from its
  first event (`scimflow webhook replay`), and the events worker sends the tenant's whole
  outbox again with the rest of the stack idle. During the sync delivery can go no faster
  than the workers write events (the outbox's own rate is reported next to it); the replay
  is what delivery alone can do;
- the receiver's own capacity, measured in the same run before the sync: one thread posting a
  typical signed event over one keep-alive connection with `http.client` for a few seconds,
  so that the delivery rate can be read as a fraction of what the receiver could take;
- delivery capacity while the sync runs: a second endpoint, registered disabled, catches up
  on the backlog half-way through the sync (`ops/bench/catch_up.py`); its deliveries are
  recorded apart and counted in none of the figures above.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.idp_requests import IdpRequests
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.receiver import (
    CAPACITY_PATH,
    CATCH_UP_PATH,
    CATCH_UP_SECRET_VARIABLE,
    SECRET_VARIABLE,
)
from scimflow.ops.bench.stack import BIN, Processes, free_port, wait_http
from scimflow.pipeline.events.model import EventDraft, Subject, event_document, new_event_id
from scimflow.pipeline.events.signing import signature_headers
from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import make_celery
from scimflow.workers.dispatch import CeleryDispatcher

DEPROVISIONED = "user.deprovisioned"
# Delivery is given up on when no new event has arrived for this long after convergence.
STALL_SECONDS = 60.0
# Where a waiting loop reports how far it got (the runner prints it at most once a second).
Progress = Callable[[str], None]


@dataclass(frozen=True)
class WebhookTarget:
    port: int
    secret: str
    endpoint_id: str
    # The second endpoint (receiver path `/catch-up`), disabled until the catch-up begins.
    catch_up_id: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


def start_webhooks(processes: Processes, args: argparse.Namespace) -> WebhookTarget:
    """Register the bench tenant's endpoints (the catch-up one disabled: its cursor stays
    before the sync's first event), then start their receiver and the events worker."""
    port = free_port()

    def add(path: str) -> dict[str, Any]:
        return dict(json.loads(processes.output(
            ["scimflow", "webhook", "add", "bench", f"http://127.0.0.1:{port}{path}",
             "--json"])))

    added, catch_up = add("/hooks"), add(CATCH_UP_PATH)
    processes.output(["scimflow", "webhook", "disable", str(catch_up["id"]),
                      "--reason", "bench: enabled half-way through the sync"])
    target = WebhookTarget(port, str(added["secret"]), str(added["id"]), str(catch_up["id"]))
    processes.spawn("receiver", [str(BIN / "python"), "-m", "scimflow.ops.bench.receiver",
                                 "--port", str(port)],
                    extra_env={SECRET_VARIABLE: target.secret,
                               CATCH_UP_SECRET_VARIABLE: str(catch_up["secret"])})
    processes.spawn("events", ["scimflow", "events-worker",
                               "--concurrency", str(args.events_threads)])
    wait_http(f"http://127.0.0.1:{port}/stats")
    return target


def get_json(target: WebhookTarget, path: str) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def typical_event(plan: SyncPlan, idp: IdpRequests) -> dict[str, Any]:
    """A `user.created` document as the sync's users produce it."""
    user_id = uuid.uuid4().hex
    data = {k: v for k, v in idp.user_body(plan, 0, None).items() if k != "password"}
    data |= {"id": user_id, "meta": {"resourceType": "User", "version": 'W/"1"',
                                     "created": "2026-01-01T00:00:00Z",
                                     "lastModified": "2026-01-01T00:00:00Z",
                                     "location": f"/scim/v2/Users/{user_id}"}}
    draft = EventDraft("user.created", 1, 1, data,
                       {"externalId": data["externalId"], "userName": data["userName"]},
                       request_id=uuid.uuid4().hex)
    return event_document(draft, Subject("bench", "User", user_id),
                          event_id=new_event_id(), occurred_at=datetime.now(UTC))


def receiver_capacity(target: WebhookTarget, document: dict[str, Any],
                      seconds: float = 3.0) -> dict[str, Any]:
    """Signed POSTs of one event, back to back on one keep-alive connection, for `seconds`."""
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = signature_headers(document["id"], body, [target.secret],
                                timestamp=int(time.time()))
    headers["content-type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    requests, started = 0, time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            connection.request("POST", CAPACITY_PATH, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"the bench receiver answered {response.status}")
            requests += 1
    finally:
        connection.close()
    return {"per_s": round(requests / elapsed), "requests": requests,
            "event_bytes": len(body)}


def wait_delivered(target: WebhookTarget, database_url: str, tenant_id: str,
                   progress: Progress | None = None, *, log: str = "") -> None:
    """Until every outbox event of the tenant arrived, or nothing new came for a minute
    (`log`: the receiver's log of the endpoint, `""` or `CATCH_UP_PATH`)."""
    expected = outbox_count(database_url, tenant_id)
    last_count, last_change = -1, time.monotonic()
    while True:
        distinct = int(get_json(target, f"{log}/stats")["distinct"])
        if distinct >= expected:
            return
        if distinct != last_count:
            last_count, last_change = distinct, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            return  # reported as not every event arrived
        if progress is not None:
            progress(f"  delivering{log}: {distinct}/{expected} events received")
        time.sleep(0.5)
        expected = outbox_count(database_url, tenant_id)


def replay_backlog(processes: Processes, target: WebhookTarget, database_url: str,
                   tenant_id: str, progress: Progress | None = None) -> dict[str, Any]:
    """Send the tenant's whole outbox again and time it (beat's sweep starts it, within
    SCIMFLOW_WEBHOOK_SWEEP_SECONDS: the rate is taken from the first replayed arrival)."""
    already = int(get_json(target, "/stats")["received"])
    first = measure.query(database_url, "SELECT event_id FROM outbox WHERE tenant_id = %s "
                          "ORDER BY id LIMIT 1", tenant_id)
    if not first:
        return {"events": 0, "per_s": 0, "seconds": 0.0}
    processes.output(["scimflow", "webhook", "replay", target.endpoint_id,
                      "--since", str(first[0][0])])
    # Rung now, as a drain rings for new events: beat's sweep rings an endpoint at most once
    # a minute, and the figure is the delivery's, not the sweep's.
    ring_delivery(processes.env, target.endpoint_id)
    expected = already + outbox_count(database_url, tenant_id)
    last_count, last_change = -1, time.monotonic()
    while (received := int(get_json(target, "/stats")["received"])) < expected:
        if received != last_count:
            last_count, last_change = received, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            break
        if progress is not None:
            progress(f"  replaying: {received - already}/{expected - already} events received")
        time.sleep(0.5)
    replayed = [tuple(row) for row in get_json(target, "/records")[already:]]
    return _throughput(replayed, distinct=False)


def ring_delivery(env: dict[str, str], endpoint_id: str) -> None:
    """Send the events worker the doorbell of one endpoint, through the run's broker."""
    app = make_celery(Settings.from_env(env))
    try:
        CeleryDispatcher(app).deliver(endpoint_id)
    finally:
        app.close()


def outbox_count(database_url: str, tenant_id: str) -> int:
    return int(measure.query(database_url, "SELECT count(*) FROM outbox WHERE tenant_id = %s",
                             tenant_id)[0][0])


def webhook_figures(target: WebhookTarget, database_url: str, tenant_id: str,
                    deprovision_acks: dict[str, float],
                    capacity: dict[str, Any]) -> dict[str, Any]:
    """The webhooks section of the summary, from the receiver's records and PostgreSQL."""
    stats = get_json(target, "/records")
    arrivals = [tuple(row) for row in stats]
    outbox_ids = {row[0] for row in measure.query(
        database_url, "SELECT event_id FROM outbox WHERE tenant_id = %s", tenant_id)}
    received_ids = {row[1] for row in arrivals}
    counts = get_json(target, "/stats")
    throughput = _throughput(arrivals)
    written = measure.query(
        database_url, "SELECT count(*), extract(epoch FROM max(created_at) - min(created_at)) "
        "FROM outbox WHERE tenant_id = %s", tenant_id)[0]
    last_apply = measure.query(
        database_url, "SELECT max(applied_at) FROM journal WHERE tenant_id = %s", tenant_id)[0][0]
    lag = (round(arrivals[-1][0] - last_apply.timestamp(), 3)
           if arrivals and last_apply is not None else None)
    return {
        "endpoint": target.endpoint_id,
        "deprovision_to_webhook": deprovision_latency(arrivals, deprovision_acks),
        # The part of it after the apply: from the deactivation's applied_at to the arrival.
        "deprovision_applied_to_webhook": deprovision_latency(
            arrivals, deprovisions_applied(database_url, tenant_id)),
        "delivery": throughput | {
            "outbox_events": len(outbox_ids),
            "outbox_written_per_s": round(written[0] / float(written[1])) if written[1] else 0,
            "all_arrived": outbox_ids <= received_ids,
            "missing": len(outbox_ids - received_ids),
            "repeats": len(arrivals) - len(received_ids),
            "bad_signatures": counts["bad_signatures"],
            "unparsable": counts["unparsable"],
            "lag_after_last_apply_s": lag,
        },
        "receiver_capacity": capacity,
        "throughput_vs_receiver_capacity": (round(throughput["per_s"] / capacity["per_s"], 3)
                                            if capacity["per_s"] else None),
    }


def _throughput(arrivals: list[tuple[Any, ...]], *, distinct: bool = True) -> dict[str, Any]:
    """Events per second from the first arrival to the last (each event's first arrival, or
    every arrival when `distinct` is false)."""
    if distinct:
        firsts: dict[str, float] = {}
        for arrived, webhook_id, *_ in arrivals:
            firsts.setdefault(webhook_id, arrived)
        times = sorted(firsts.values())
    else:
        times = sorted(row[0] for row in arrivals)
    seconds = times[-1] - times[0] if len(times) > 1 else 0.0
    return {"events": len(times), "received": len(arrivals),
            "per_s": round(len(times) / seconds) if seconds else 0,
            "seconds": round(seconds, 2)}


def deprovisions_applied(database_url: str, tenant_id: str) -> dict[str, float]:
    """Per deactivated user, when its deactivation was applied (the deprovisioning lane)."""
    return {str(user): float(at) for user, at in measure.query(
        database_url, "SELECT resource_id, extract(epoch FROM applied_at) FROM journal "
        "WHERE tenant_id = %s AND lane = 0 AND status = 'applied' "
        "AND resource_type = 'User'", tenant_id)}


def deprovision_latency(arrivals: list[tuple[Any, ...]],
                        since: dict[str, float]) -> dict[str, Any]:
    """From each user's moment in `since` (its PATCH active:false answered 2xx, or applied)
    to the first arrival of its `user.deprovisioned`."""
    arrived: dict[str, float] = {}
    for at, _, event_type, resource_id in arrivals:
        if event_type == DEPROVISIONED:
            arrived.setdefault(resource_id, at)
    latencies = sorted(arrived[user] - at for user, at in since.items() if user in arrived)
    return {"count": len(latencies), "deactivations": len(since),
            "p50_s": measure.percentile(latencies, 0.50),
            "p99_s": measure.percentile(latencies, 0.99),
            "max_s": round(latencies[-1], 3) if latencies else None}


def delivery_knobs(env: dict[str, str], events_threads: int) -> dict[str, Any]:
    """The delivery settings the run's events worker read (SCIMFLOW_WEBHOOK_* or defaults)."""
    settings = Settings.from_env(env)
    return {"events_threads": events_threads, "lanes": settings.webhook_concurrency,
            "batch_size": settings.webhook_batch_size}
