"""Group commit: the writes of concurrent callers go to the database as one statement.

Leader/follower, as in LevelDB's write queue or PostgreSQL's own group commit: each caller
would otherwise pay for its own statement and commit (a WAL flush).
See docs/ARCHITECTURE.md ("Absorbing a large initial sync").
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def _locked() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(slots=True)
class _Waiter(Generic[Item, Result]):
    item: Item
    # Released exactly once: when the caller's batch is written, or when it becomes the leader.
    # One wake-up per caller (a shared condition would wake every waiting thread per batch).
    wake: threading.Lock = field(default_factory=_locked)
    done: bool = False
    retry_alone: bool = False
    result: Result | None = None
    error: Exception | None = None


class GroupCommit(Generic[Item, Result]):
    """Serialises concurrent `submit` calls into batched calls of `write_batch`.

    `write_batch` gets items in arrival order and returns one result per item, in that order.
    """

    def __init__(
        self,
        write_batch: Callable[[Sequence[Item]], Sequence[Result]],
        *,
        max_batch: int = 64,
        shared_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._shared_errors = shared_errors
        self._queue: deque[_Waiter[Item, Result]] = deque()
        self._writing = False
        self._lock = threading.Lock()

    def submit(self, item: Item) -> Result:
        """Write `item` (with whatever else is queued) and return its result once committed."""
        waiter: _Waiter[Item, Result] = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            leading = not self._writing
            self._writing = True
        if not leading:
            waiter.wake.acquire()
            if waiter.error is not None:
                raise waiter.error
            if waiter.retry_alone:
                return self._write_batch([item])[0]
            if waiter.done:
                return waiter.result  # type: ignore[return-value]
        return self._lead(waiter)

    def _lead(self, leader: _Waiter[Item, Result]) -> Result:
        with self._lock:
            batch = [self._queue.popleft()
                     for _ in range(min(len(self._queue), self._max_batch))]
        try:
            results = self._write_batch([waiter.item for waiter in batch])
        except BaseException as error:
            # Whatever ends the write, the followers are answered and a next leader is named:
            # a caller left waiting would hold its request, and every later create, forever.
            shared = error if isinstance(error, self._shared_errors) else None
            self._hand_over(batch, leader, results=None, error=shared)
            if len(batch) == 1 or shared is not None or not isinstance(error, Exception):
                raise
            return self._write_batch([leader.item])[0]
        self._hand_over(batch, leader, results)
        return results[batch.index(leader)]

    def _hand_over(
        self,
        batch: list[_Waiter[Item, Result]],
        leader: _Waiter[Item, Result],
        results: Sequence[Result] | None,
        error: Exception | None = None,
    ) -> None:
        """Answer the batch's other callers, and make the oldest queued caller the next leader."""
        with self._lock:
            next_leader = self._queue[0] if self._queue else None
            self._writing = next_leader is not None
        for index, waiter in enumerate(batch):
            if waiter is leader:
                continue
            if error is not None:
                waiter.error = copy.copy(error)
            elif results is None:
                waiter.retry_alone = True
            else:
                waiter.result = results[index]
            waiter.done = True
            waiter.wake.release()
        if next_leader is not None:
            next_leader.wake.release()
