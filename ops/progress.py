"""Progress bars for long CLI work, drawn by rich on stderr, and only when stderr is a terminal:
into a pipe, a file or a test's capture they write nothing, so stdout and stderr stay clean.

`tracked(items, total, "replaying")` wraps an iterable (`for item in tracked(...)`, or as a
context manager); `PhaseBars` follows work reported as (phase, done, total) callbacks, and
`Countdown` a backlog that drains to zero.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def stderr_console() -> Console:
    return Console(stderr=True)


def _bars(console: Console) -> Progress | None:
    """A started rich Progress on `console`, or None when it is not a terminal."""
    if not console.is_terminal:
        return None
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
    )
    progress.start()
    return progress


class Tracked(Generic[T]):
    """The items of an iterable, advancing a bar as each one is taken."""

    def __init__(self, items: Iterable[T], total: int | None, description: str,
                 console: Console | None = None) -> None:
        self._items = items
        self._total = total
        self._description = description
        self._console = console or stderr_console()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._entered = False

    def __enter__(self) -> Tracked[T]:
        self._entered = True
        self._progress = _bars(self._console)
        if self._progress is not None:
            self._task = self._progress.add_task(self._description, total=self._total)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = self._task = None

    def __iter__(self) -> Iterator[T]:
        if not self._entered:
            # Used as a plain iterable: the bar lasts as long as the loop.
            with self:
                yield from self._advancing()
            return
        yield from self._advancing()

    def _advancing(self) -> Iterator[T]:
        for item in self._items:
            yield item
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task)


def tracked(items: Iterable[T], total: int | None = None, description: str = "",
            console: Console | None = None) -> Tracked[T]:
    """`items`, with a bar on stderr when it is a terminal. `total` defaults to `len(items)`
    when it has one; None draws a bar that pulses until the items run out."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    return Tracked(items, total, description, console)


class PhaseBars:
    """One bar per phase, set from (phase, done, total) reports; a no-op off a terminal."""

    def __init__(self, console: Console | None = None, *, suffix: str = "") -> None:
        self._progress = _bars(console or stderr_console())
        self._tasks: dict[str, TaskID] = {}
        self._suffix = suffix

    @property
    def drawing(self) -> bool:
        return self._progress is not None

    def show(self, phase: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(f"{phase}{self._suffix}", total=total)
        self._progress.update(self._tasks[phase], completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> PhaseBars:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class Countdown:
    """A backlog draining to zero: the bar's total is the largest backlog seen."""

    def __init__(self, description: str, console: Console | None = None) -> None:
        self._bars = PhaseBars(console)
        self._description = description
        self._largest = 0

    @property
    def drawing(self) -> bool:
        return self._bars.drawing

    def remaining(self, count: int) -> None:
        self._largest = max(self._largest, count)
        self._bars.show(self._description, self._largest - count, self._largest)

    def close(self) -> None:
        self._bars.close()

    def __enter__(self) -> Countdown:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
