"""Operator commands over the database: dead letters, the connection budget, extension schemas.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeAlias

from scimflow.ops.connection_budget import Budget, server_limits
from scimflow.ops.documents import UnreadableDocument, read_json
from scimflow.ops.output import emit, moment, operator_errors
from scimflow.ops.progress import tracked
from scimflow.ops.table import render
from scimflow.pipeline.ports import Dispatcher
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.operations import Operations
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions, unit_of_work
from scimflow.pipeline.store.tenant_schemas import Declared

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _operations(settings: Settings, dispatcher: Dispatcher | None = None) -> Operations:
    sessions = make_sessions(make_engine(settings, "tool"))
    return Operations(sessions, dispatcher or _NoDoorbell())


class _NoDoorbell:
    """Listing and discarding ring no worker."""

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        raise AssertionError("only replay rings the workers")


@operator_errors
def dead_letter_list(settings: Settings, args: argparse.Namespace) -> int:
    letters = _operations(settings).dead_letters(
        getattr(args, "tenant", None), include_settled=args.all,
        limit=getattr(args, "limit", 200))
    table = [(d.id, d.tenant_name, d.resource_type, d.resource_name, d.summary,
              moment(d.created_at), d.settled or "-", d.reason.splitlines()[0][:80])
             for d in letters]
    text = render(("ID", "TENANT", "TYPE", "RESOURCE", "COMMAND", "DEAD SINCE", "SETTLED",
                   "REASON"), table) if table else ""
    emit([asdict(letter) for letter in letters], args.json, text or "(no dead letters)")
    return 0


@operator_errors
def dead_letter_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Re-append a dead command to the journal, then ring the workers for its tenant."""
    from scimflow.ops.processes import dispatcher_for  # noqa: PLC0415 - only replay needs a broker

    operations = _operations(settings, dispatcher_for(settings))
    with tracked(args.ids, description="replaying dead letters") as ids:
        for dead_letter_id in ids:
            letter = operations.replay(dead_letter_id)
            print(f"dead letter {dead_letter_id} replayed for tenant {letter.tenant_name}")
    return 0


@operator_errors
def dead_letter_discard(settings: Settings, args: argparse.Namespace) -> int:
    """Settle a dead letter without applying it; it stays listed (`list --all`)."""
    operations = _operations(settings)
    with tracked(args.ids, description="discarding dead letters") as ids:
        for dead_letter_id in ids:
            letter = operations.discard(dead_letter_id)
            print(f"dead letter {dead_letter_id} of tenant {letter.tenant_name} discarded")
    return 0


def add_dead_letter_parsers(commands: Commands) -> None:
    dead = commands.add_parser("dead-letters", help="inspect, replay and discard dead letters")
    dead_commands = dead.add_subparsers(title="dead-letter commands", metavar="COMMAND")
    listing = dead_commands.add_parser("list", help="list dead letters")
    listing.add_argument("--all", action="store_true",
                         help="include settled ones (replayed or discarded)")
    listing.add_argument("--tenant", help="only this tenant (name or id)")
    listing.add_argument("--limit", type=int, default=200)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=dead_letter_list)
    replay = dead_commands.add_parser("replay", help="journal dead commands again")
    # Each in its own transaction, in the order given: one that fails stops the rest.
    replay.add_argument("ids", type=int, nargs="+", metavar="ID")
    replay.set_defaults(handler=dead_letter_replay)
    discard = dead_commands.add_parser(
        "discard", help="settle a dead letter without applying it (kept for the record)")
    discard.add_argument("ids", type=int, nargs="+", metavar="ID")
    discard.set_defaults(handler=dead_letter_discard)


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
