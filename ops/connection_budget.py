"""The PostgreSQL connection budget of a deployment: a formula, not an accident.
See docs/ARCHITECTURE.md ("Connection budget").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from scimflow.pipeline.settings import Settings

# Operator tools (migrate, status, tenant commands) connect one at a time, without a pool.
TOOL_CONNECTIONS = 2


@dataclass(frozen=True, slots=True)
class Budget:
    api: int
    workers: int
    events: int
    tools: int

    @property
    def total(self) -> int:
        return self.api + self.workers + self.events + self.tools

    @classmethod
    def of(cls, settings: Settings) -> Budget:
        """api processes * (pool + overflow) + worker replicas * concurrency * 1 + the events
        worker's threads + tools.

        Beat only publishes messages and holds no connection; a Celery worker's parent
        process never runs tasks, so only its prefork children connect, one each; the events
        worker's threads share one pool, one connection per thread.
        """
        per_api = settings.api_pool_size + settings.api_pool_overflow
        return cls(
            api=settings.api_processes * per_api,
            workers=settings.worker_replicas * settings.worker_concurrency,
            events=settings.webhook_workers,
            tools=TOOL_CONNECTIONS,
        )


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_connections: int
    reserved: int
    in_use: int

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved


def server_limits(session: Session) -> ServerLimits:
    def setting(name: str) -> int:
        return int(session.execute(text(f"SHOW {name}")).scalar_one())

    in_use = session.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar_one()
    return ServerLimits(
        setting("max_connections"), setting("superuser_reserved_connections"), int(in_use)
    )
