"""The pages operators keep open, answered from figures a couple of seconds old at most.

During a large sync every statement behind the tenant page waits for a CPU the sync keeps busy,
so a page computed per request answers in the time of its dozen round trips under load, and
each operator watching adds the same queries again. The tenants list and each tenant's
unsearched directory are instead computed at most once per `max_age` seconds per console
process, however many operators watch them, and off the request: a request is answered from
the last figures and, when they are older than `max_age`, sets off their refresh in the
background (stale-while-revalidate), so a page watched every few seconds shows figures about
`max_age` plus one refresh old. Figures older than `stale_limit` (nobody watched for a while,
or refreshing keeps failing) are computed in the request again, so a failure reaches the page.
Searches, histories, lists and actions always read afresh; an action forgets every page.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from scimflow.pipeline.services.operations import (
    DeadLetterLine,
    DeliveryLine,
    DirectoryPage,
    Operations,
    ResourceTrace,
    TenantOverview,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# ("tenants",) or ("directory", tenant, resource type, limit).
PageKey = tuple[Any, ...]
Start = Callable[[Callable[[], None]], None]


@dataclass(slots=True)
class _Page:
    value: Any
    computed_at: float
    refreshing: bool = False


def _in_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="scimflow-console-refresh", daemon=True).start()


class RecentPages:
    """`Operations` for the console, with its two watched pages kept recent."""

    def __init__(self, operations: Operations, *, max_age: float = 2.0,
                 stale_limit: float = 30.0, monotonic: Callable[[], float] = time.monotonic,
                 start: Start = _in_a_thread) -> None:
        self._operations = operations
        self._max_age = max_age
        self._stale_limit = stale_limit
        self._monotonic = monotonic
        self._start = start
        self._lock = threading.Lock()
        self._pages: dict[PageKey, _Page] = {}
        # Bumped by every action: a refresh begun before it must not bring back what it read.
        self._generation = 0

    def tenants(self) -> list[TenantOverview]:
        return self._recent(("tenants",), self._operations.tenants)

    def directory(self, tenant: str, query: str = "",
                  resource_type: Literal["User", "Group"] | None = None,
                  limit: int = 50) -> DirectoryPage:
        def read() -> DirectoryPage:
            return self._operations.directory(tenant, query, resource_type, limit)

        if query.strip():
            return read()
        return self._recent(("directory", tenant, resource_type, limit), read)

    def trace(self, tenant: str, reference: str) -> ResourceTrace:
        return self._operations.trace(tenant, reference)

    def dead_letters(self, tenant: str | None = None, *, include_settled: bool = False,
                     limit: int = 200) -> list[DeadLetterLine]:
        return self._operations.dead_letters(tenant, include_settled=include_settled,
                                             limit=limit)

    def replay(self, dead_letter_id: int) -> DeadLetterLine:
        replayed = self._operations.replay(dead_letter_id)
        self._forget()
        return replayed

    def discard(self, dead_letter_id: int) -> DeadLetterLine:
        discarded = self._operations.discard(dead_letter_id)
        self._forget()
        return discarded

    def deliveries(self, tenant: str | None = None, *, limit: int = 200) -> list[DeliveryLine]:
        return self._operations.deliveries(tenant, limit=limit)

    def _recent(self, key: PageKey, read: Callable[[], T]) -> T:
        now = self._monotonic()
        with self._lock:
            page = self._pages.get(key)
            if page is not None and now - page.computed_at <= self._stale_limit:
                if now - page.computed_at > self._max_age and not page.refreshing:
                    page.refreshing = True
                    generation = self._generation
                    self._start(lambda: self._refresh(key, read, generation))
                value: T = page.value
                return value
            generation = self._generation
        # Never read, or too stale to show: the request waits, and sees any failure.
        fresh = read()
        self._store(key, fresh, generation)
        return fresh

    def _refresh(self, key: PageKey, read: Callable[[], Any], generation: int) -> None:
        try:
            fresh = read()
        except Exception:  # the page keeps its last figures; a later request tries again
            log.warning("refreshing the console's %s page failed", key[0], exc_info=True)
            with self._lock:
                page = self._pages.get(key)
                if page is not None:
                    page.refreshing = False
            return
        self._store(key, fresh, generation)

    def _store(self, key: PageKey, value: Any, generation: int) -> None:
        now = self._monotonic()
        with self._lock:
            if generation != self._generation:
                return
            # Pages nobody asked for within the stale limit go (a tenant deleted, a filter
            # tried once), so the cache holds what is being watched and no more.
            self._pages = {k: p for k, p in self._pages.items()
                           if now - p.computed_at <= self._stale_limit}
            self._pages[key] = _Page(value, now)

    def _forget(self) -> None:
        with self._lock:
            self._pages.clear()
            self._generation += 1
