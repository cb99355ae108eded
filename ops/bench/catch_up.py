"""Delivery capacity while the sync runs: a second endpoint catching up on a backlog.

During the sync the tenant's main endpoint gets each event as soon as it is written, so its
rate is the workers' rate of writing events, not delivery's. To measure what delivery can do
with the sync still loading the machine, the benchmark registers a second endpoint of the
tenant (receiver path `/catch-up`, its own secret, its own log) and disables it before the
sync: its cursor stays before the sync's first event (`disable` never skips anything, so no
replay is needed). Once half of the sync's users are applied (so that the backlog is about
half of the sync's events, whatever the apply rate), it is enabled (through the service
`scimflow webhook enable` calls, in this process) and rung (as a drain rings), and it delivers
the whole backlog written so far while the sync goes on, then keeps up with the outbox.

The figure is its catch-up: distinct events per second from its first arrival until every
event that existed when it was enabled had arrived, with what the sync did in that interval
(users acknowledged, journal entries applied, events written) and the CPU per role from the
enabling until the receiver had as many events as the backlog held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scimflow.ops.bench import measure
from scimflow.ops.bench.cpu import CpuMeter
from scimflow.ops.bench.receiver import CATCH_UP_PATH
from scimflow.ops.bench.stack import Processes
from scimflow.ops.bench.webhooks import WebhookTarget, get_json, ring_delivery
from scimflow.pipeline.services.webhooks import Webhooks
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions

# How often the CPU window's end (the backlog's count received) is looked for.
POLL_SECONDS = 0.25
# How often the sync's progress is looked at, waiting for half of its users to be applied.
WATCH_SECONDS = 0.2


@dataclass(frozen=True)
class SyncActivity:
    """When the sync did what, to say how much of it ran during the catch-up."""

    users_acked_at: list[float]
    requests_ended_at: float  # wall clock: the last request of the sync answered


@dataclass
class CatchUp:
    processes: Processes
    target: WebhookTarget
    database_url: str
    tenant_id: str
    roles: Callable[[], dict[str, int]]
    enabled_at: float | None = None
    backlog_last_id: int = 0
    backlog_events: int = 0
    # The sync's users acknowledged (journal entries) and applied when it was enabled.
    users_at_enable: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _watch: threading.Thread | None = None
    _meter: threading.Thread | None = None
    _failed: BaseException | None = None

    def watch(self, users: int) -> None:
        """Begin the catch-up, in a thread of its own, once half of `users` are applied."""
        self._watch = threading.Thread(target=self._begin_at_half, args=(users,), daemon=True)
        self._watch.start()

    def _begin_at_half(self, users: int) -> None:
        try:
            while not self._stop.is_set():
                self.users_at_enable = self._users()
                if self.users_at_enable["applied"] >= max(1, users // 2):
                    self.begin()
                    return
                self._stop.wait(WATCH_SECONDS)
        except BaseException as error:  # re-raised by `wait_enabled`, in the runner's thread
            self._failed = error

    def _users(self) -> dict[str, int]:
        acknowledged, applied = measure.query(
            self.database_url, "SELECT count(*), count(*) FILTER (WHERE status = 'applied') "
            "FROM journal WHERE tenant_id = %s AND resource_type = 'User' AND kind = 'create'",
            self.tenant_id)[0]
        return {"acknowledged": int(acknowledged), "applied": int(applied)}

    def begin(self) -> None:
        """Enable the endpoint on the backlog written so far and ring it; the CPU is metered
        from now until the receiver holds as many events as the backlog."""
        self._snapshot()
        settings = Settings.from_env(self.processes.env)
        # In this process, as `scimflow webhook enable` does it: a command's start-up would
        # fall into the CPU window.
        engine = make_engine(settings, "tool")
        try:
            webhooks = Webhooks(make_sessions(engine),
                                allow_private=settings.webhook_allow_private_networks)
            self._meter = threading.Thread(target=self._metered, daemon=True)
            self._meter.start()
            webhooks.enable(self.target.catch_up_id)
        finally:
            engine.dispose()
        # Rung now: beat's sweep would ring it within a minute, and the figure is delivery's.
        ring_delivery(self.processes.env, self.target.catch_up_id)
        self.enabled_at = time.time()

    def _snapshot(self) -> int:
        last_id, count = measure.query(
            self.database_url, "SELECT coalesce(max(id), 0), count(*) FROM outbox "
            "WHERE tenant_id = %s", self.tenant_id)[0]
        self.backlog_last_id, self.backlog_events = int(last_id), int(count)
        return self.backlog_events

    def _metered(self) -> None:
        with CpuMeter(self.roles) as meter:
            while (not self._stop.is_set()
                   and self._received() < self.backlog_events):
                self._stop.wait(POLL_SECONDS)
        self.cpu = meter.summary()

    def _received(self) -> int:
        return int(get_json(self.target, f"{CATCH_UP_PATH}/stats")["distinct"])

    def wait_enabled(self) -> None:
        """Until the endpoint is enabled (the runner calls it once the sync converged)."""
        if self._watch is not None:
            self._watch.join()
        if self._failed is not None:
            raise RuntimeError("the catch-up endpoint could not be enabled") from self._failed

    def finish(self) -> None:
        """End the watch, and the CPU window if the backlog never arrived in full."""
        self._stop.set()
        for thread in (self._watch, self._meter):
            if thread is not None:
                thread.join()

    def figures(self, activity: SyncActivity, capacity: dict[str, Any]) -> dict[str, Any]:
        """The `catch_up_during_sync` section, from the receiver's `/catch-up` log."""
        arrivals = [tuple(row) for row in get_json(self.target, f"{CATCH_UP_PATH}/records")]
        firsts: dict[str, float] = {}
        for arrived, webhook_id, *_ in arrivals:
            firsts.setdefault(webhook_id, arrived)
        backlog_ids = self._event_ids(up_to=self.backlog_last_id)
        outbox_ids = self._event_ids()
        counts = get_json(self.target, f"{CATCH_UP_PATH}/stats")
        checks = {"all_arrived": outbox_ids <= firsts.keys(),
                  "missing": len(outbox_ids - firsts.keys()),
                  "repeats": len(arrivals) - len(firsts),
                  "bad_signatures": counts["bad_signatures"], "unparsable": counts["unparsable"]}
        base = {"endpoint": self.target.catch_up_id, "backlog_events": self.backlog_events,
                "users_acknowledged_at_enable": self.users_at_enable.get("acknowledged"),
                "users_applied_at_enable": self.users_at_enable.get("applied"),
                "received": len(arrivals), "cpu": self.cpu} | checks
        if not firsts or not backlog_ids <= firsts.keys():
            return base | {"events": 0, "per_s": 0, "seconds": 0.0, "vs_receiver_capacity": None}
        start, end = min(firsts.values()), max(firsts[event] for event in backlog_ids)
        seconds = end - start
        events = sum(1 for at in firsts.values() if at <= end)
        per_s = round(events / seconds) if seconds else 0
        return base | {
            "events": events, "seconds": round(seconds, 2), "per_s": per_s,
            "first_arrival_after_enable_s": round(start - (self.enabled_at or start), 3),
            "vs_receiver_capacity": (round(per_s / capacity["per_s"], 3)
                                     if capacity["per_s"] else None),
            "sync_during": self._sync_during(activity, start, end)}

    def _event_ids(self, up_to: int | None = None) -> set[str]:
        sql = "SELECT event_id FROM outbox WHERE tenant_id = %s"
        params: tuple[Any, ...] = (self.tenant_id,)
        if up_to is not None:
            sql, params = sql + " AND id <= %s", (*params, up_to)
        return {str(row[0]) for row in measure.query(self.database_url, sql, *params)}

    def _sync_during(self, activity: SyncActivity, start: float, end: float) -> dict[str, Any]:
        """What the sync did between the catch-up's first arrival and its end."""
        applied, written = measure.query(
            self.database_url,
            "SELECT (SELECT count(*) FROM journal WHERE tenant_id = %s "
            "        AND applied_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)), "
            "       (SELECT count(*) FROM outbox WHERE tenant_id = %s "
            "        AND created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s))",
            self.tenant_id, start, end, self.tenant_id, start, end)[0]
        sending = min(max(activity.requests_ended_at - start, 0.0), end - start)
        return {"users_acked": sum(1 for at in activity.users_acked_at if start <= at <= end),
                "journal_entries_applied": int(applied), "events_written": int(written),
                "requests_running_share": round(sending / (end - start), 2) if end > start
                else None}
