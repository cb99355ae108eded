"""Doorbell coalescing: fewer messages, never a stranded write, never a blocked request."""

from __future__ import annotations

import threading
import time

from scimflow.workers.coalesce import CoalescingDispatcher


class Recorder:
    def __init__(self) -> None:
        self.rings: list[tuple[str, bool]] = []
        self.sent = threading.Event()

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self.rings.append((tenant_id, urgent))
        self.sent.set()


def make() -> tuple[CoalescingDispatcher, Recorder, list[float]]:
    inner, now = Recorder(), [100.0]
    dispatcher = CoalescingDispatcher(
        inner, window_seconds=0.05, monotonic=lambda: now[0], start_thread=False
    )
    return dispatcher, inner, now


def test_many_rings_in_a_window_become_one_now_and_one_when_it_closes() -> None:
    dispatcher, inner, now = make()
    dispatcher.ring("t1")
    assert dispatcher.flush() is None
    for _ in range(100):
        dispatcher.ring("t1")
    wait = dispatcher.flush()
    assert inner.rings == [("t1", False)]
    assert wait is not None and 0 < wait <= 0.05
    now[0] += 0.051
    dispatcher.flush()
    assert inner.rings == [("t1", False), ("t1", False)]


def test_tenants_are_coalesced_separately() -> None:
    dispatcher, inner, _ = make()
    dispatcher.ring("t1")
    dispatcher.ring("t2")
    dispatcher.flush()
    assert sorted(inner.rings) == [("t1", False), ("t2", False)]


def test_deprovisioning_rings_skip_the_window() -> None:
    dispatcher, inner, _ = make()
    dispatcher.ring("t1")
    dispatcher.flush()
    dispatcher.ring("t1", urgent=True)
    dispatcher.flush()
    assert inner.rings == [("t1", False), ("t1", True)]


def test_a_failing_broker_does_not_stop_the_doorbell() -> None:
    class Broken:
        def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
            raise ConnectionError("broker down")

    dispatcher = CoalescingDispatcher(Broken(), start_thread=False)
    dispatcher.ring("t1")
    dispatcher.flush()


def test_the_background_thread_sends_without_the_caller_waiting() -> None:
    inner = Recorder()
    dispatcher = CoalescingDispatcher(inner, window_seconds=0.01)
    started = time.monotonic()
    dispatcher.ring("t1")
    assert time.monotonic() - started < 0.01
    assert inner.sent.wait(2)
    assert inner.rings == [("t1", False)]


class CountingDispatcher(CoalescingDispatcher):
    flushes = 0

    def flush(self) -> float | None:
        self.flushes += 1
        return super().flush()


def test_rings_for_a_tenant_already_waiting_do_not_wake_the_sender() -> None:
    inner = Recorder()
    dispatcher = CountingDispatcher(inner, window_seconds=30)
    dispatcher.ring("t1")
    assert inner.sent.wait(5)
    time.sleep(0.05)
    woken_before = dispatcher.flushes
    for _ in range(50):
        dispatcher.ring("t1")  # inside the window: one more send is due when it closes
        time.sleep(0.002)  # time for a woken sender to run
    time.sleep(0.1)
    assert dispatcher.flushes - woken_before <= 1
    assert inner.rings == [("t1", False)]
