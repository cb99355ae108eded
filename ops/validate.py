"""`scimflow validate`: run a captured IdP request through the protocol, offline.

Prints the canonical command (or the SCIM error the IdP would get), answering "what did
scimflow make of this request?" without a running service.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

from scimflow.ops.documents import read_json
from scimflow.pipeline.errors import ScimError
from scimflow.pipeline.scim.protocol import ScimProtocol, default_protocol
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.migrate import require_current


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser(
        "validate", help="run a SCIM request body through the protocol"
    )
    validate.add_argument("resource_type", choices=["User", "Group"])
    validate.add_argument("body", type=Path, help="JSON request body ('-' for stdin)")
    mode = validate.add_mutually_exclusive_group()
    mode.add_argument("--patch", action="store_true", help="the body is a PATCH request")
    mode.add_argument("--replace", action="store_true", help="the body is a PUT request")
    validate.add_argument(
        "--current", type=Path, help="canonical resource the PATCH/PUT applies to"
    )
    validate.add_argument(
        "--tenant", help="validate against this tenant's extension schemas (reads the database)"
    )
    validate.set_defaults(handler=run, needs_schema=False)  # --tenant checks it itself


def run(settings: Settings, args: argparse.Namespace) -> int:
    protocol = _tenant_protocol(settings, args.tenant) if args.tenant else default_protocol()
    try:
        outcome = _validate(protocol, args)
    except ScimError as ex:
        print(json.dumps({"status": ex.status, "error": ex.to_body()}, indent=2))
        return 1
    print(json.dumps(outcome, indent=2))
    return 0


def _tenant_protocol(settings: Settings, tenant: str) -> ScimProtocol:
    """The protocol the tenant's requests go through: the built-in schemas and its extensions."""
    require_current(settings.database_url)
    sessions = make_sessions(make_engine(settings, "tool"))
    tenant_id = Tenancy(sessions).find(tenant).id
    return TenantProtocols(sessions, default_registry(), cache_seconds=0).for_tenant(tenant_id)


def _validate(protocol: ScimProtocol, args: argparse.Namespace) -> dict[str, Any]:
    body = read_json(args.body)
    current = read_json(args.current) if args.current else {}
    resource_id = str(current.pop("id", None) or uuid.uuid4())
    if args.patch:
        command, new, changed = protocol.validate_patch(
            args.resource_type, resource_id, body, current
        )
        return {"command": command.to_json(), "resource": new, "changed": changed}
    if args.replace:
        command = protocol.validate_replace(args.resource_type, resource_id, body, current)
    else:
        command = protocol.validate_create(args.resource_type, resource_id, body)
    return {"command": command.to_json()}


