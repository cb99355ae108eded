"""Doorbell coalescing: fewer messages, never a stranded write, never a blocked request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

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


def test_a_failing_broker_does_not_stop_the_doorbell(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenOnce(Recorder):
        def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
            if tenant_id == "t1":
                raise ConnectionError("broker down")
            super().ring(tenant_id, urgent=urgent)

    inner = BrokenOnce()
    dispatcher = CoalescingDispatcher(inner, start_thread=False)
    dispatcher.ring("t1")
    dispatcher.flush()
    dispatcher.ring("t2")
    dispatcher.flush()
    assert inner.rings == [("t2", False)]
    assert "doorbell for tenant t1 failed" in caplog.text


class HungBroker(Recorder):
    """A broker that takes every message only when released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.senders: set[threading.Thread] = set()

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self.senders.add(threading.current_thread())
        self.entered.set()
        assert self.release.wait(5), "nobody released the broker"
        super().ring(tenant_id, urgent=urgent)


def test_the_background_thread_sends_without_the_caller_waiting() -> None:
    broker = HungBroker()
    dispatcher = CoalescingDispatcher(broker, window_seconds=0.01)
    dispatcher.ring("t1")  # a caller sending itself would hang here until the broker gave up
    assert broker.entered.wait(2)
    for _ in range(50):
        dispatcher.ring("t1")  # returns at once, the broker still hung
    assert broker.rings == []
    broker.release.set()
    assert eventually(lambda: len(broker.rings) >= 2)
    time.sleep(0.05)  # time for any further, wrongly uncoalesced, send
    assert broker.rings == [("t1", False), ("t1", False)]
    assert threading.current_thread() not in broker.senders


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


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
