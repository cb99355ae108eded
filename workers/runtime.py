"""Per-process state of a worker: built lazily, and rebuilt after fork.

A prefork child must not share its parent's database connections (SQLAlchemy's pooling docs,
"Using Connection Pools with Multiprocessing"), so the engine is created on first use in each
process and discarded in `worker_process_init`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.drain import Drainer, RetryPolicy
from scimflow.pipeline.engines import TenantEngines
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions


@dataclass
class WorkerRuntime:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings, "worker")

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessions(self.engine)

    @cached_property
    def drainer(self) -> Drainer:
        return build_drainer(self.settings, self.sessions)

    def after_fork(self) -> None:
        """Forget the parent's engine; the child builds its own on first use."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose(close=False)
        self.__dict__.pop("sessions", None)
        self.__dict__.pop("drainer", None)


def build_drainer(settings: Settings, sessions: sessionmaker[Session]) -> Drainer:
    retry = RetryPolicy(
        base_seconds=settings.retry_base_seconds,
        max_seconds=settings.retry_max_seconds,
        limit=settings.reference_retry_limit,
    )
    # Workers never see cleartext passwords: commands carry hashes, so no hasher is needed.
    engines = TenantEngines(
        sessions, default_registry(), cache_seconds=settings.token_cache_seconds
    )
    return Drainer(sessions, engines, batch_size=settings.drain_batch_size, retry=retry)
