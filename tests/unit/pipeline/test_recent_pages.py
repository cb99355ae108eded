"""The console's watched pages: recent figures without a query per request, never stale
beyond the limit, refreshed off the request, forgotten after an action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from scimflow.pipeline.services.operations import Operations
from scimflow.pipeline.services.recent_pages import RecentPages


class CountingReads:
    """The read model's port: each call returns a new figure (its call number)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.failing = False

    def tenants(self) -> int:
        return self._read("tenants")

    def directory(self, tenant: str, query: str, resource_type: Any, limit: int) -> int:
        return self._read("directory", tenant, query, resource_type, limit)

    def replay(self, dead_letter_id: int) -> str:
        return f"replayed {dead_letter_id}"

    def _read(self, *call: Any) -> int:
        if self.failing:
            raise RuntimeError("the database does not answer")
        self.calls.append(call)
        return len(self.calls)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reads() -> CountingReads:
    return CountingReads()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def started() -> list[Callable[[], None]]:
    return []


@pytest.fixture
def pages(reads: CountingReads, clock: Clock, started: list[Callable[[], None]]) -> RecentPages:
    return RecentPages(cast(Operations, reads), max_age=2.0, stale_limit=30.0, monotonic=clock,
                       start=started.append)


def test_operators_watching_share_one_read_while_it_is_recent(
        pages: RecentPages, reads: CountingReads, clock: Clock) -> None:
    assert pages.tenants() == 1
    clock.now += 1.5
    assert [pages.tenants(), pages.tenants()] == [1, 1]
    assert len(reads.calls) == 1


def test_older_figures_are_shown_while_they_refresh_off_the_request(
        pages: RecentPages, reads: CountingReads, clock: Clock,
        started: list[Callable[[], None]]) -> None:
    pages.tenants()
    clock.now += 3
    assert pages.tenants() == 1  # answered at once, from the last figures
    assert pages.tenants() == 1
    assert len(started) == 1  # one refresh, however many requests meet old figures
    started.pop()()
    assert pages.tenants() == 2


def test_figures_beyond_the_stale_limit_are_read_in_the_request(
        pages: RecentPages, reads: CountingReads, clock: Clock,
        started: list[Callable[[], None]]) -> None:
    pages.tenants()
    clock.now += 31
    assert pages.tenants() == 2
    assert started == []


def test_a_failing_refresh_keeps_the_figures_then_reaches_the_page(
        pages: RecentPages, reads: CountingReads, clock: Clock,
        started: list[Callable[[], None]]) -> None:
    pages.tenants()
    clock.now += 3
    reads.failing = True
    pages.tenants()
    started.pop()()  # fails, logged
    clock.now += 1
    assert pages.tenants() == 1
    assert len(started) == 1  # and is tried again
    clock.now += 30
    with pytest.raises(RuntimeError, match="does not answer"):
        pages.tenants()


def test_searches_always_read_and_pages_are_kept_apart(
        pages: RecentPages, reads: CountingReads) -> None:
    assert pages.directory("acme") == pages.directory("acme") == 1
    assert pages.directory("globex") == 2
    assert pages.directory("acme", resource_type="Group") == 3
    assert pages.directory("acme", "ann") == 4
    assert pages.directory("acme", "ann") == 5


def test_an_action_forgets_every_page(pages: RecentPages, reads: CountingReads) -> None:
    pages.tenants()
    assert pages.replay(7) == "replayed 7"
    assert pages.tenants() == 2


def test_a_refresh_begun_before_an_action_does_not_bring_back_what_it_read(
        pages: RecentPages, reads: CountingReads, clock: Clock,
        started: list[Callable[[], None]]) -> None:
    pages.tenants()
    clock.now += 3
    pages.tenants()  # sets off a refresh
    pages.replay(7)
    started.pop()()  # it read before the replay had its effect (call 2): dropped
    assert pages.tenants() == 3
