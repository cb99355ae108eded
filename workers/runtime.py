"""Per-process state of a worker: built lazily, and rebuilt after fork.

A prefork child must not share its parent's database connections (SQLAlchemy's pooling docs,
"Using Connection Pools with Multiprocessing"), so the engine is created on first use in each
process and discarded in `worker_process_init`.
See docs/ARCHITECTURE.md ("Workers (`workers/`)").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.events.transport import WebhookTransport
from scimflow.pipeline.passwords.setup import worker_passwords
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.delivery import Deliverer, DeliveryPolicy
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.services.set_signing import SetSigner
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import retention
from scimflow.pipeline.store.db import Role, make_engine, make_sessions
from scimflow.pipeline.store.retention import PruneReport, RetentionPolicy

# One scheduled retention run (beat's `scimflow.prune`, or the embedded worker's interval).
Pruner = Callable[[], PruneReport]


@dataclass
class WorkerRuntime:
    settings: Settings
    # "events": the events worker, whose threads share one process's pool.
    role: Role = "worker"

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings, self.role)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessions(self.engine)

    @cached_property
    def drainer(self) -> Drainer:
        return build_drainer(self.settings, self.sessions)

    @cached_property
    def pruner(self) -> Pruner:
        return build_pruner(self.settings, self.sessions)

    @cached_property
    def deliverer(self) -> Deliverer:
        return build_deliverer(self.settings, self.sessions)

    def after_fork(self) -> None:
        """Forget the parent's engine; the child builds its own on first use."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose(close=False)
        self.__dict__.pop("sessions", None)
        self.__dict__.pop("drainer", None)
        self.__dict__.pop("pruner", None)
        self.__dict__.pop("deliverer", None)


def build_drainer(settings: Settings, sessions: sessionmaker[Session]) -> Drainer:
    retry = RetryPolicy(
        base_seconds=settings.retry_base_seconds,
        max_seconds=settings.retry_max_seconds,
        limit=settings.reference_retry_limit,
    )
    # Commands carry passwords sealed by the API; the drain opens and hashes them.
    protocols = TenantProtocols(
        sessions, default_registry(), cache_seconds=settings.token_cache_seconds
    )
    return Drainer(sessions, protocols, batch_size=settings.drain_batch_size, retry=retry,
                   passwords=worker_passwords(settings))


def build_deliverer(settings: Settings, sessions: sessionmaker[Session]) -> Deliverer:
    policy = DeliveryPolicy(
        batch_size=settings.webhook_batch_size,
        concurrency=settings.webhook_concurrency,
        disable_after=timedelta(hours=settings.webhook_disable_after_hours),
        base_seconds=settings.webhook_retry_base_seconds,
        max_seconds=settings.webhook_retry_max_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    transport = WebhookTransport(timeout=settings.webhook_timeout_seconds,
                                 allow_private=settings.webhook_allow_private_networks)
    signer = SetSigner(sessions, issuer=settings.public_url)
    return Deliverer(sessions, transport, policy=policy, signer=signer)


# The embedded worker prunes on its only thread, between drains: a short run, without pauses,
# so a drain never waits long behind it (at least 10,000 rows a run is plenty for one process).
EMBEDDED_BATCHES_PER_RUN = 10


def build_pruner(settings: Settings, sessions: sessionmaker[Session]) -> Pruner:
    """Beat's run: paced by the policy's pause, bounded by the store's batches per run."""
    policy = RetentionPolicy.from_settings(settings)
    return lambda: retention.prune(sessions, policy, now=utc_now())


def build_embedded_pruner(settings: Settings, sessions: sessionmaker[Session]) -> Pruner:
    policy = replace(RetentionPolicy.from_settings(settings), pause_seconds=0.0)
    return lambda: retention.prune(sessions, policy, now=utc_now(),
                                   max_batches=EMBEDDED_BATCHES_PER_RUN)
