"""Each tenant's protocol: `TenantProtocols` (a `ProtocolSource`) builds a tenant's `ScimProtocol`
from the built-in schemas plus the extensions it declared (and no other tenant's) and keeps it for
`cache_seconds`, so a new declaration takes effect within that time in every process;
`SharedProtocol` serves one protocol to every tenant.
See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.ports import Clock, PasswordProtector, utc_now
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import SchemaRegistry
from scimflow.pipeline.store import tenant_schemas
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenant_schemas import Declared


class ProtocolSource(Protocol):
    def for_tenant(self, tenant_id: str, session: Session | None = None) -> ScimProtocol:
        """The tenant's protocol; `session` reads its schemas inside the caller's transaction."""
        ...


class SharedProtocol:
    """One protocol for every tenant (tools and tests without tenant schemas)."""

    def __init__(self, protocol: ScimProtocol) -> None:
        self._protocol = protocol

    def for_tenant(self, tenant_id: str, session: Session | None = None) -> ScimProtocol:
        return self._protocol


def as_protocol_source(protocol: ScimProtocol | ProtocolSource) -> ProtocolSource:
    return SharedProtocol(protocol) if isinstance(protocol, ScimProtocol) else protocol


class TenantProtocols:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        base: SchemaRegistry,
        *,
        protect_password: PasswordProtector | None = None,
        cache_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._base = base
        self._protect_password = protect_password
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._clock = clock
        self._default = ScimProtocol(base, protect_password=protect_password)
        self._cache: dict[str, tuple[ScimProtocol, float]] = {}
        self._lock = threading.Lock()

    def for_tenant(self, tenant_id: str, session: Session | None = None) -> ScimProtocol:
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[1] > self._monotonic():
            return cached[0]
        if session is not None:
            # A worker holds its one pooled connection already: read through it.
            declarations = tenant_schemas.declared(session, tenant_id)
        else:
            with unit_of_work(self._sessions) as own:
                declarations = tenant_schemas.declared(own, tenant_id)
        protocol = self._protocol_for(declarations)
        with self._lock:
            self._cache[tenant_id] = (protocol, self._monotonic() + self._cache_seconds)
        return protocol

    def declare(self, tenant_id: str, declaration: Declared) -> None:
        """Add an extension schema to a tenant, after checking it builds a valid registry."""
        with unit_of_work(self._sessions) as session:
            existing = tenant_schemas.declared(session, tenant_id)
            self._registry_with([*existing, declaration])  # raises InvalidValue if it is not
            tenant_schemas.add(session, tenant_id, declaration, now=self._clock())
        self._cache.pop(tenant_id, None)

    def forget(self, tenant_id: str, schema_id: str) -> None:
        with unit_of_work(self._sessions) as session:
            tenant_schemas.remove(session, tenant_id, schema_id)
        self._cache.pop(tenant_id, None)

    def _protocol_for(self, declarations: list[Declared]) -> ScimProtocol:
        if not declarations:
            return self._default
        return ScimProtocol(self._registry_with(declarations),
                            protect_password=self._protect_password)

    def _registry_with(self, declarations: list[Declared]) -> SchemaRegistry:
        registry = self._base
        for declaration in declarations:
            registry = registry.with_extension(
                declaration.resource_type, declaration.document, required=declaration.required
            )
        return registry
