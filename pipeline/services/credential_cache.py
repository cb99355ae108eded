"""What a bearer credential authenticated as, remembered briefly by its digest: a busy client's
every request spares a query, and a revocation takes effect within `seconds`. Failures are
never remembered. Shared by the tenants' SCIM tokens and the applications' keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Beyond this many remembered credentials the cache starts again empty (a bound, not an LRU:
# a flood of distinct valid credentials is not a case worth more code).
MAX_REMEMBERED = 10_000


class CredentialCache(Generic[T]):
    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._monotonic = monotonic
        self._remembered: dict[str, tuple[T, float]] = {}

    def get(self, digest: str) -> T | None:
        remembered = self._remembered.get(digest)
        if remembered is not None and remembered[1] > self._monotonic():
            return remembered[0]
        return None

    def put(self, digest: str, value: T) -> None:
        if self._seconds <= 0:
            return
        if len(self._remembered) >= MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[digest] = (value, self._monotonic() + self._seconds)
