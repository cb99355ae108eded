"""Operator commands over the database: dead letters, the connection budget, extension schemas.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scimflow.ops.connection_budget import Budget, server_limits
from scimflow.ops.documents import UnreadableDocument, read_json
from scimflow.ops.output import emit
from scimflow.ops.table import render
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import dead_letters
from scimflow.pipeline.store.db import make_engine, make_sessions, unit_of_work
from scimflow.pipeline.store.tenant_schemas import Declared


def dead_letter_list(settings: Settings, args: argparse.Namespace) -> int:
    sessions = make_sessions(make_engine(settings, "tool"))
    with unit_of_work(sessions) as session:
        letters = dead_letters.list_dead_letters(session, include_replayed=args.all)
    table = [(d.id, d.journal_seq, d.tenant_id, d.resource_id, d.reason) for d in letters]
    text = render(("ID", "SEQ", "TENANT", "RESOURCE", "REASON"), table) if table else ""
    emit([asdict(letter) for letter in letters], args.json, text or "(no dead letters)")
    return 0


def dead_letter_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Re-append a dead command to the journal, then ring the workers for its tenant."""
    from scimflow.ops.processes import dispatcher_for  # noqa: PLC0415 - only replay needs a broker

    sessions = make_sessions(make_engine(settings, "tool"))
    with unit_of_work(sessions) as session:
        tenant_id = dead_letters.replay(session, args.id, now=utc_now())
    dispatcher_for(settings).ring(tenant_id)
    print(f"dead letter {args.id} replayed for tenant {tenant_id}")
    return 0


def connections(settings: Settings, args: argparse.Namespace) -> int:
    """Print the connection budget of this configuration against the server's limit."""
    budget = Budget.of(settings)
    lines = [
        f"api      {settings.api_processes} processes x (pool {settings.api_pool_size}"
        f" + overflow {settings.api_pool_overflow}) = {budget.api}",
        f"workers  {settings.worker_replicas} replicas x concurrency "
        f"{settings.worker_concurrency} x 1 = {budget.workers}",
        f"events   1 events worker x {settings.webhook_workers} threads = {budget.events}",
        f"tools    {budget.tools} (migrate, status, tenant commands; no pool)",
        f"total    {budget.total}",
    ]
    result: dict[str, Any] = {"api": budget.api, "workers": budget.workers,
                              "events": budget.events, "tools": budget.tools,
                              "total": budget.total}
    fits = True
    if settings.database_url.startswith("postgresql"):
        with unit_of_work(make_sessions(make_engine(settings, "tool"))) as session:
            limits = server_limits(session)
        fits = budget.total <= limits.available
        lines.append(f"server   max_connections {limits.max_connections} - reserved "
                     f"{limits.reserved} = {limits.available} available "
                     f"({limits.in_use} in use now): {'fits' if fits else 'OVER BUDGET'}")
        result.update(max_connections=limits.max_connections, available=limits.available,
                      in_use=limits.in_use, fits=fits)
    emit(result, args.json, "\n".join(lines))
    return 0 if fits else 1


def _protocols(settings: Settings) -> tuple[TenantProtocols, Tenancy]:
    sessions = make_sessions(make_engine(settings, "tool"))
    return TenantProtocols(sessions, default_registry(), cache_seconds=0), Tenancy(sessions)


def schema_add(settings: Settings, args: argparse.Namespace) -> int:
    """Declare an extension schema (RFC 7643 §7 JSON) for one of a tenant's resource types."""
    protocols, tenancy = _protocols(settings)
    tenant = tenancy.find(args.tenant)
    document = read_json(Path(args.file))
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise UnreadableDocument(f"{args.file} is not a schema: it needs an \"id\" URN")
    protocols.declare(tenant.id, Declared(args.resource_type, document, args.required))
    print(f"{document['id']} declared for {args.resource_type} of tenant {tenant.name}")
    return 0


def schema_list(settings: Settings, args: argparse.Namespace) -> int:
    protocols, tenancy = _protocols(settings)
    registry = protocols.for_tenant(tenancy.find(args.tenant).id).registry
    rows = [
        {"resource_type": rt.name, "schema": ext.schema.id, "required": ext.required}
        for rt in registry.resource_types for ext in rt.extensions
    ]
    table = [(r["resource_type"], r["schema"], "yes" if r["required"] else "no") for r in rows]
    text = render(("RESOURCE TYPE", "SCHEMA", "REQUIRED"), table) if table else "(no extensions)"
    emit(rows, args.json, text)
    return 0


def schema_remove(settings: Settings, args: argparse.Namespace) -> int:
    protocols, tenancy = _protocols(settings)
    protocols.forget(tenancy.find(args.tenant).id, args.urn)
    print(f"{args.urn} removed")
    return 0
