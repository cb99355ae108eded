"""The ports the domain depends on; adapters in `workers/` and `api/` implement them.
See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

Clock = Callable[[], datetime]
# What validation does with a cleartext password: seal it (the API), or hash it at once.
PasswordProtector = Callable[[str], str]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Dispatcher(Protocol):
    """Wakes the workers: work is waiting in the journal for this tenant.

    A ring is a doorbell, not the work: losing one costs latency (the sweeper rings again) and
    ringing twice costs nothing (the second drain finds nothing left to do). It is called after
    the write committed, so an implementation must not raise: it logs and drops instead.
    """

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None: ...
