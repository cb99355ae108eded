"""Back-off for repeated bearer-token failures from one client address, in one process.

Failures are never cached, so without it a client guessing tokens (or an IdP left with a revoked
one) costs a query per request. One lock guards both tables: the API's request threads share a
throttle, and an evicting insert is several steps. See docs/ARCHITECTURE.md ("The HTTP edge").
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from scimflow.pipeline.errors import TooManyRequests

MAX_SOURCES = 10_000
MAX_TRUSTED = 10_000

K = TypeVar("K")
V = TypeVar("V")


class AuthenticationThrottled(TooManyRequests):
    """429 + Retry-After for an address refused by the throttle."""

    default_detail = "Too many failed authentications from this address; retry later."


@dataclass
class _Failures:
    count: int
    window_ends: float
    refused_until: float = 0.0


class AuthFailureThrottle:
    """Counts failed authentications per client address and refuses an address that keeps
    failing (see the module docstring)."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_sources: int = MAX_SOURCES,
        max_trusted: int = MAX_TRUSTED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._max_sources = max_sources
        self._max_trusted = max_trusted
        self._clock = clock
        self._sources: OrderedDict[str, _Failures] = OrderedDict()
        # Digests (`tenants.token_digest`) of tokens that authenticated, and until when they
        # stay trusted.
        self._trusted: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._limit > 0

    def refusal(self, source: str, token_key: str) -> int | None:
        """Seconds the source must wait before this token is tried, or None to try it now."""
        now = self._clock()
        with self._lock:
            failures = self._sources.get(source)
            if failures is None or failures.refused_until <= now:
                return None
            if self._trusted.get(token_key, 0.0) > now:
                return None
            return max(1, math.ceil(failures.refused_until - now))

    def failed(self, source: str) -> bool:
        """Count a failure; True when it is the one that starts the source's refusal."""
        if not self.enabled:
            return False
        now = self._clock()
        with self._lock:
            failures = self._sources.get(source)
            if failures is None or failures.window_ends <= now:
                failures = _Failures(count=0, window_ends=now + self._window)
            failures.count += 1
            _remember(self._sources, source, failures, self._max_sources)
            if failures.count == self._limit:
                failures.refused_until = now + self._window
                failures.window_ends = failures.refused_until
                return True
            return False

    def succeeded(self, token_key: str) -> None:
        """A token authenticated: trusted for a window even from a refused address.

        A success does not clear its address's failures: those may be another tenant's.
        """
        if self.enabled:
            expires = self._clock() + self._window
            with self._lock:
                _remember(self._trusted, token_key, expires, self._max_trusted)


def _remember(table: OrderedDict[K, V], key: K, value: V, cap: int) -> None:
    """Store as the newest entry, forgetting the oldest beyond `cap`."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > cap:
        table.popitem(last=False)
