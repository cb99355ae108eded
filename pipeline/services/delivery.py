"""Webhook delivery: each endpoint's events, in order, at least once, from the outbox.

A delivery task leases one endpoint, reads the events past its cursor, and posts the ones it
subscribed to. One resource's events go one after the other on one lane, so a later event
for a user is never delivered before an earlier one; different resources go on parallel
lanes. The cursor moves past the longest run of delivered events; when an attempt fails, the
lanes stop, the endpoint backs off (exponentially with jitter, over about a day, or as its
`Retry-After` asks) and what followed the failure is sent again later: a receiver may see an
event twice (the repeat has the same `webhook-id`, and may come after newer events of its
resource), but never an event before an earlier one of its resource. `410 Gone`
disables the endpoint, as does failing for `disable_after_hours`. Every attempt is recorded.
See docs/EVENTS.md (for receivers) and docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.events.model import matches
from scimflow.pipeline.events.signing import signature_headers
from scimflow.pipeline.events.transport import AttemptResult
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.store import outbox, webhook_delivery
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.outbox import StoredEvent
from scimflow.pipeline.store.webhook_delivery import LeasedEndpoint, Move

JSON_TYPE = "application/json"
SET_TYPE = "application/secevent+jwt"


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult: ...


class SetSigning(Protocol):
    def sign(self, document: Mapping[str, Any], *, audience: str) -> str: ...


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard delivery tries: ~30 attempts over a day by default, then the endpoint is
    disabled (5 s, 10 s, 20 s … doubling to an hour, each 50-100 % of that at random)."""

    batch_size: int = 500
    concurrency: int = 8
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    disable_after: timedelta = timedelta(hours=24)
    # How long one task keeps an endpoint before handing it to the next task: no attempt
    # starts after it, so a task ends within the budget plus one timeout.
    budget_seconds: float = 10.0
    timeout_seconds: float = 10.0

    def backoff(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(failures - 1, 0))
        return ceiling * (0.5 + rng() / 2)

    @property
    def lease(self) -> timedelta:
        """Outlasts a task (renewed after each step): a killed task's endpoint waits this
        long at most before another task takes it."""
        return timedelta(seconds=self.budget_seconds + self.timeout_seconds + 5)


@dataclass(slots=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    # The endpoint was held by another task, backing off, or disabled: nothing was tried.
    skipped: bool = False
    # Events are left past the cursor and the endpoint is ready for them now.
    more: bool = False
    disabled: str | None = None


@dataclass(slots=True)
class _Step:
    """One read of events past the cursor, sent on lanes."""

    events: list[StoredEvent]
    # No attempt starts after this moment (the task's budget).
    deadline: datetime
    # The secrets that sign this step's deliveries (parsed once per step, not per event).
    secrets: list[str] = field(default_factory=list)
    results: dict[int, AttemptResult] = field(default_factory=dict)
    attempted_at: dict[int, datetime] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Deliverer:
    """Delivers one endpoint's pending events per call; safe to call from several threads."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: Transport,
        *,
        policy: DeliveryPolicy | None = None,
        signer: SetSigning | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._transport = transport
        self._policy = policy or DeliveryPolicy()
        self._signer = signer
        self._clock = clock
        # Lanes run on threads of the calling thread's own pool: the endpoints that concurrent
        # tasks deliver never wait for each other's slow receivers, and each pool's threads
        # keep their connections alive from one task to the next.
        self._local = threading.local()
        self._pools: list[ThreadPoolExecutor] = []
        self._pools_lock = threading.Lock()

    def deliver(self, endpoint_id: str) -> DeliveryReport:
        """Send what is past the endpoint's cursor, for up to the policy's budget."""
        report = DeliveryReport()
        started = self._clock()
        with unit_of_work(self._sessions) as session:
            endpoint = webhook_delivery.lease(session, endpoint_id, now=started,
                                              until=started + self._policy.lease)
        if endpoint is None:
            report.skipped = True
            return report
        cursor = endpoint.cursor
        try:
            cursor = self._deliver_leased(endpoint, report, started)
        finally:
            if report.disabled is None:
                self._release(endpoint)
        if not report.failed and not report.more:
            # Events committed while the lease was held found it taken and rang nobody.
            report.more = self._waiting_after(endpoint.tenant_id, cursor)
        return report

    def _deliver_leased(self, endpoint: LeasedEndpoint, report: DeliveryReport,
                        started: datetime) -> int:
        """Deliver step by step; return the cursor reached."""
        cursor = endpoint.cursor
        deadline = started + timedelta(seconds=self._policy.budget_seconds)
        while True:
            with unit_of_work(self._sessions) as session:
                events = outbox.read_after(session, cursor, limit=self._policy.batch_size,
                                           tenants=[endpoint.tenant_id])
            if not events:
                return cursor
            step = _Step(events, deadline, _signing_secrets(endpoint.secrets, self._clock()))
            self._send(endpoint, step)
            reached, failure = _reached(cursor, step, endpoint.event_types)
            report.delivered += sum(r.delivered for r in step.results.values())
            move = Move(endpoint.id, endpoint.token, cursor, reached)
            if failure is not None:
                report.failed += 1
                self._fail(endpoint, step, move, failure, report)
                return reached
            if not self._advance(endpoint, step, move):
                return reached  # replayed meanwhile: the next task starts from there
            cursor = reached
            if self._clock() >= deadline:
                report.more = True
                return cursor

    def _waiting_after(self, tenant_id: str, cursor: int) -> bool:
        with unit_of_work(self._sessions) as session:
            return bool(outbox.read_after(session, cursor, limit=1, tenants=[tenant_id]))

    def _send(self, endpoint: LeasedEndpoint, step: _Step) -> None:
        lanes: dict[str, list[StoredEvent]] = {}
        for event in step.events:
            if matches(endpoint.event_types, event.event_type):
                lanes.setdefault(event.resource_id, []).append(event)
        if not lanes:
            return
        # Each lane is one resource's events in order; lanes share the pool's threads, and a
        # thread takes the next whole lane, so a resource's events never run side by side.
        pool = self._lane_pool()
        futures = [pool.submit(self._send_lane, endpoint, step, lane) for lane in lanes.values()]
        for future in futures:
            future.result()

    def _send_lane(self, endpoint: LeasedEndpoint, step: _Step,
                   lane: Sequence[StoredEvent]) -> None:
        for event in lane:
            if step.stop.is_set() or self._clock() >= step.deadline:
                return
            body, headers = self._request(endpoint, event, step.secrets)
            attempted_at = self._clock()
            result = self._transport.post(endpoint.url, body, headers)
            with step.lock:
                step.results[event.position] = result
                step.attempted_at[event.position] = attempted_at
            if not result.delivered:
                step.stop.set()
                return

    def _request(self, endpoint: LeasedEndpoint, event: StoredEvent,
                 secrets: list[str]) -> tuple[bytes, dict[str, str]]:
        if endpoint.format == "set":
            if self._signer is None:
                raise RuntimeError("a SET endpoint needs a Deliverer built with a signer")
            token = self._signer.sign(event.document, audience=endpoint.url)
            return token.encode(), {"content-type": SET_TYPE, "accept": JSON_TYPE}
        body = json.dumps(event.document, separators=(",", ":")).encode()
        headers = signature_headers(event.document["id"], body, secrets,
                                    timestamp=int(self._clock().timestamp()))
        headers["content-type"] = JSON_TYPE
        return body, headers

    def _advance(self, endpoint: LeasedEndpoint, step: _Step, move: Move) -> bool:
        with unit_of_work(self._sessions) as session:
            webhook_delivery.record_attempts(session, _attempt_rows(endpoint, step))
            return webhook_delivery.advance(session, move,
                                            lease_until=self._clock() + self._policy.lease)

    def _fail(self, endpoint: LeasedEndpoint, step: _Step, move: Move,
              failure: AttemptResult, report: DeliveryReport) -> None:
        now = self._clock()
        delivered_before = move.reached > endpoint.cursor
        # Delivering anything ends the run of failures: the count starts again.
        failures = 1 if delivered_before else endpoint.failures + 1
        failing_since = now if delivered_before else (endpoint.failing_since or now)
        # Every lane's failure counts: one lane's timeout must not hide another's 410 or 429.
        failed = [r for r in step.results.values() if not r.delivered]
        reason = _disable_reason(failed, failure, failing_since, now, self._policy.disable_after)
        with unit_of_work(self._sessions) as session:
            webhook_delivery.record_attempts(session, _attempt_rows(endpoint, step))
            if reason is not None:
                if webhook_delivery.disable(session, move, reason=reason, now=now):
                    report.disabled = reason
                return
            asked = [r.retry_after for r in failed if r.retry_after is not None]
            delay = max(asked) if asked else self._policy.backoff(failures)
            webhook_delivery.back_off(
                session, move, failures=failures,
                failing_since=failing_since,
                next_attempt_at=now + timedelta(seconds=min(delay, 86_400.0)),
            )

    def _release(self, endpoint: LeasedEndpoint) -> None:
        with unit_of_work(self._sessions) as session:
            webhook_delivery.release(session, endpoint.id, endpoint.token)

    def _lane_pool(self) -> ThreadPoolExecutor:
        pool: ThreadPoolExecutor | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = ThreadPoolExecutor(
                self._policy.concurrency, thread_name_prefix="scimflow-webhook"
            )
            with self._pools_lock:
                self._pools.append(pool)
        return pool

    def close(self) -> None:
        with self._pools_lock:
            for pool in self._pools:
                pool.shutdown(wait=False, cancel_futures=True)


def _reached(cursor: int, step: _Step,
             patterns: Sequence[str]) -> tuple[int, AttemptResult | None]:
    """The position up to which every event was delivered (or not subscribed to), and the
    first failed attempt, if any. An event left unsent was stopped by another lane's failure
    (the reason) or by the budget (no failure: the next task goes on from there)."""
    reached = cursor
    for event in step.events:
        result = step.results.get(event.position)
        if result is None and not matches(patterns, event.event_type):
            reached = event.position
            continue
        if result is None or not result.delivered:
            return reached, result or _first_failure(step)
        reached = event.position
    return reached, None


def _first_failure(step: _Step) -> AttemptResult | None:
    return next((r for _, r in sorted(step.results.items()) if not r.delivered), None)


def _disable_reason(failed: Sequence[AttemptResult], failure: AttemptResult,
                    failing_since: datetime, now: datetime,
                    disable_after: timedelta) -> str | None:
    if any(result.status == 410 for result in failed):
        return "the endpoint answered 410 Gone"
    if now - failing_since >= disable_after:
        hours = disable_after.total_seconds() / 3600
        return (f"failing for {hours:g} hours (since {failing_since.isoformat()}); "
                f"last attempt: {_described(failure)}")
    return None


def _described(result: AttemptResult) -> str:
    return f"HTTP {result.status}" if result.status is not None else (result.error or "error")


def _signing_secrets(secrets: Sequence[dict[str, object]], now: datetime) -> list[str]:
    """The secrets that sign now: the newest, and older ones until their rotation ends."""
    return [str(s["secret"]) for s in secrets
            if not s.get("expires_at") or datetime.fromisoformat(str(s["expires_at"])) > now]


def _attempt_rows(endpoint: LeasedEndpoint, step: _Step) -> list[dict[str, object]]:
    by_position = {event.position: event for event in step.events}
    return [
        {
            "endpoint_id": endpoint.id,
            "event_position": position,
            "event_id": by_position[position].document["id"],
            "attempted_at": step.attempted_at[position],
            "status_code": result.status,
            "latency_ms": result.latency_ms,
            "error": result.error,
        }
        for position, result in sorted(step.results.items())
    ]
