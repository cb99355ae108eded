"""Doorbell coalescing: fewer messages, never a stranded write."""

from __future__ import annotations

from collections.abc import Callable

from workers.coalesce import CoalescingDispatcher


class Recorder:
    def __init__(self) -> None:
        self.rings: list[tuple[str, bool]] = []

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self.rings.append((tenant_id, urgent))


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        self.timers.append((self.now + delay, action))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, action in due:
            action()


def make() -> tuple[CoalescingDispatcher, Recorder, ManualClock]:
    inner, clock = Recorder(), ManualClock()
    dispatcher = CoalescingDispatcher(
        inner, window_seconds=0.05, monotonic=lambda: clock.now, schedule=clock.schedule
    )
    return dispatcher, inner, clock


def test_many_rings_in_a_window_become_one_now_and_one_trailing() -> None:
    dispatcher, inner, clock = make()
    for _ in range(100):
        dispatcher.ring("t1")
    assert inner.rings == [("t1", False)]
    clock.advance(0.05)
    assert inner.rings == [("t1", False), ("t1", False)]


def test_a_ring_after_the_window_goes_out_at_once() -> None:
    dispatcher, inner, clock = make()
    dispatcher.ring("t1")
    clock.advance(0.06)
    dispatcher.ring("t1")
    assert len(inner.rings) == 2
    assert clock.timers == []


def test_tenants_are_coalesced_separately() -> None:
    dispatcher, inner, _ = make()
    dispatcher.ring("t1")
    dispatcher.ring("t2")
    assert inner.rings == [("t1", False), ("t2", False)]


def test_deprovisioning_rings_are_never_delayed() -> None:
    dispatcher, inner, _ = make()
    dispatcher.ring("t1")
    dispatcher.ring("t1", urgent=True)
    dispatcher.ring("t1", urgent=True)
    assert inner.rings == [("t1", False), ("t1", True), ("t1", True)]
