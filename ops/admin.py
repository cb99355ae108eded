"""Operator commands over the database: tenants, tokens, dead letters, status."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from scimflow.pipeline.engines import TenantEngines
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import dead_letters
from scimflow.pipeline.store.budget import Budget, server_limits
from scimflow.pipeline.store.db import make_engine, make_sessions, unit_of_work
from scimflow.pipeline.store.migrate import upgrade
from scimflow.pipeline.store.tenant_schemas import Declared
from scimflow.pipeline.store.tenants import IssuedToken
from scimflow.pipeline.tenancy import Tenancy


def _tenancy(settings: Settings) -> Tenancy:
    upgrade(settings.database_url)  # idempotent: a fresh embedded database just works
    return Tenancy(make_sessions(make_engine(settings, "tool")))


def _print(value: Any, as_json: bool, text: str) -> None:
    print(json.dumps(value, default=_json_default, indent=2) if as_json else text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def base_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/scim/v2"


def _token_output(settings: Settings, issued: IssuedToken, as_json: bool) -> None:
    value = {"tenant": issued.tenant.name, "tenant_id": issued.tenant.id,
             "base_url": base_url(settings), "token": issued.secret, "token_id": issued.id}
    text = (f"tenant:   {issued.tenant.name} ({issued.tenant.id})\n"
            f"base URL: {base_url(settings)}\n"
            f"token:    {issued.secret}\n"
            "The token is shown once; store it in your IdP's SCIM settings now.")
    _print(value, as_json, text)


def tenant_create(settings: Settings, args: argparse.Namespace) -> int:
    _token_output(settings, _tenancy(settings).create(args.name), args.json)
    return 0


def tenant_list(settings: Settings, args: argparse.Namespace) -> int:
    tenants = _tenancy(settings).list()
    _print([asdict(t) for t in tenants], args.json,
           "\n".join(f"{t.name}\t{t.id}" for t in tenants) or "(no tenants)")
    return 0


def token_rotate(settings: Settings, args: argparse.Namespace) -> int:
    issued = _tenancy(settings).rotate(args.tenant, revoke_others=args.revoke_others)
    _token_output(settings, issued, args.json)
    return 0


def token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    count = _tenancy(settings).revoke(args.tenant, args.token_id)
    _print({"revoked": count}, args.json, f"revoked {count} token(s)")
    return 0


def dead_letter_list(settings: Settings, args: argparse.Namespace) -> int:
    sessions = make_sessions(make_engine(settings, "tool"))
    with unit_of_work(sessions) as session:
        letters = dead_letters.list_dead_letters(session, include_replayed=args.all)
    rows = [asdict(letter) for letter in letters]
    text = "\n".join(
        f"{d.id}\tseq={d.journal_seq}\ttenant={d.tenant_id}\tresource={d.resource_id}\t{d.reason}"
        for d in letters
    )
    _print(rows, args.json, text or "(no dead letters)")
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
        f"tools    {budget.tools} (migrate, status, tenant commands; no pool)",
        f"total    {budget.total}",
    ]
    result: dict[str, Any] = {"api": budget.api, "workers": budget.workers,
                              "tools": budget.tools, "total": budget.total}
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
    _print(result, args.json, "\n".join(lines))
    return 0 if fits else 1


def _engines(settings: Settings) -> tuple[TenantEngines, Tenancy]:
    upgrade(settings.database_url)
    sessions = make_sessions(make_engine(settings, "tool"))
    return TenantEngines(sessions, default_registry(), cache_seconds=0), Tenancy(sessions)


def schema_add(settings: Settings, args: argparse.Namespace) -> int:
    """Declare an extension schema (RFC 7643 §7 JSON) for one of a tenant's resource types."""
    engines, tenancy = _engines(settings)
    tenant = tenancy.find(args.tenant)
    document = json.loads(Path(args.file).read_text("utf-8"))
    engines.declare(tenant.id, Declared(args.resource_type, document, args.required))
    print(f"{document['id']} declared for {args.resource_type} of tenant {tenant.name}")
    return 0


def schema_list(settings: Settings, args: argparse.Namespace) -> int:
    engines, tenancy = _engines(settings)
    registry = engines.for_tenant(tenancy.find(args.tenant).id).registry
    rows = [
        {"resource_type": rt.name, "schema": ext.schema.id, "required": ext.required}
        for rt in registry.resource_types for ext in rt.extensions
    ]
    _print(rows, args.json, "\n".join(f"{r['resource_type']}\t{r['schema']}"
                                      f"\trequired={r['required']}" for r in rows))
    return 0


def schema_remove(settings: Settings, args: argparse.Namespace) -> int:
    engines, tenancy = _engines(settings)
    engines.forget(tenancy.find(args.tenant).id, args.urn)
    print(f"{args.urn} removed")
    return 0
