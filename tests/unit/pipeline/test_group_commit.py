"""Group commit: concurrent submissions share batches, each caller gets its own result."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from scimflow.pipeline.group_commit import GroupCommit


class SlowWriter:
    """Records each batch; the first write blocks until released, so others queue behind it."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self._fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int]:
        with self._lock:
            self.batches.append(list(items))
            first = len(self.batches) == 1
        if first:
            self.first_started.set()
            assert self.release.wait(5)
        if self._fail_on in items and len(items) > 1:
            raise RuntimeError("batch refused")
        if self._fail_on in items:
            raise ValueError(f"item {self._fail_on} is bad")
        return [item * 10 for item in items]


def _queue_behind_first(group: GroupCommit[int, int], writer: SlowWriter,
                        items: range, pool: ThreadPoolExecutor) -> list[Future[int]]:
    first = pool.submit(group.submit, items[0])
    assert writer.first_started.wait(5)
    rest = [pool.submit(group.submit, item) for item in items[1:]]
    _wait_until_queued(group, len(items) - 1)  # the first is being written
    writer.release.set()
    return [first, *rest]


def _wait_until_queued(group: GroupCommit[int, int], count: int) -> None:
    for _ in range(500):
        if len(group._queue) == count:  # who waits is the point here
            return
        threading.Event().wait(0.01)
    raise AssertionError("callers did not queue")


def test_a_lone_caller_is_written_at_once_in_a_batch_of_one() -> None:
    writer = SlowWriter()
    writer.release.set()
    assert GroupCommit(writer).submit(7) == 70
    assert writer.batches == [[7]]


def test_callers_arriving_during_a_write_share_the_next_batch() -> None:
    writer = SlowWriter()
    group: GroupCommit[int, int] = GroupCommit(writer)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = _queue_behind_first(group, writer, range(1, 9), pool)
        results = [f.result(5) for f in futures]
    assert results == [i * 10 for i in range(1, 9)]
    assert writer.batches[0] == [1]
    assert sorted(writer.batches[1]) == list(range(2, 9))
    assert len(writer.batches) == 2


def test_batches_never_exceed_the_maximum() -> None:
    writer = SlowWriter()
    group: GroupCommit[int, int] = GroupCommit(writer, max_batch=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = _queue_behind_first(group, writer, range(1, 9), pool)
        assert [f.result(5) for f in futures] == [i * 10 for i in range(1, 9)]
    assert max(len(batch) for batch in writer.batches) == 3
    assert sorted(i for batch in writer.batches for i in batch) == list(range(1, 9))


def test_a_failed_batch_is_retried_item_by_item_and_only_the_bad_item_fails() -> None:
    writer = SlowWriter(fail_on=5)
    group: GroupCommit[int, int] = GroupCommit(writer)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = _queue_behind_first(group, writer, range(1, 9), pool)
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(5))
            except ValueError as error:
                outcomes.append(str(error))
    assert outcomes == [10, 20, 30, 40, "item 5 is bad", 60, 70, 80]
    # Every item of the refused batch was written alone afterwards.
    assert sorted(batch[0] for batch in writer.batches[2:]) == [2, 3, 4, 5, 6, 7, 8]


def test_a_lone_callers_error_reaches_it_unchanged() -> None:
    writer = SlowWriter(fail_on=1)
    writer.release.set()
    with pytest.raises(ValueError, match="item 1 is bad"):
        GroupCommit(writer).submit(1)


class Unreachable(Exception):
    """Stands for an error that fails every item alike (the database is down)."""


def test_an_error_shared_by_the_whole_batch_reaches_every_caller_without_retries() -> None:
    writer = SlowWriter()
    calls: list[list[int]] = []

    def refuse_after_first(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            return writer(items)
        raise Unreachable("database unavailable")

    group: GroupCommit[int, int] = GroupCommit(refuse_after_first, shared_errors=(Unreachable,))
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = _queue_behind_first(group, writer, range(1, 6), pool)
        assert futures[0].result(5) == 10
        for future in futures[1:]:
            with pytest.raises(Unreachable):
                future.result(5)
    assert len(calls) == 2  # one batch for the four queued callers, and no retries alone


class Interrupted(BaseException):
    """Stands for what is not an Exception (KeyboardInterrupt, SystemExit) ending a write."""


def test_a_write_ended_by_a_base_exception_strands_no_caller() -> None:
    writer = SlowWriter()
    calls: list[list[int]] = []

    def interrupted_once(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            writer(items)
            raise Interrupted
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(interrupted_once)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = _queue_behind_first(group, writer, range(1, 6), pool)
        with pytest.raises(Interrupted):
            futures[0].result(5)
        assert [future.result(5) for future in futures[1:]] == [20, 30, 40, 50]
    assert group.submit(6) == 60  # and the next caller leads again
