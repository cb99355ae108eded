"""`scimflow roles …`: a tenant's group-to-role mappings. Mapping or unmapping a group changes
its members' roles at once (each gets a `user.roles_changed` event).
See docs/APPLICATIONS.md ("Roles") and docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any, TypeAlias

from scimflow.ops.output import emit, moment, operator_errors
from scimflow.ops.table import render
from scimflow.pipeline.services.role_mappings import MappingChange, RoleMappings
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parsers(commands: Commands) -> None:
    roles = commands.add_parser("roles", help="map a tenant's groups to application roles")
    actions = roles.add_subparsers(title="roles commands", metavar="COMMAND")
    mapping = actions.add_parser("map", help="give a group's members a role")
    _add_tenant_and_group(mapping)
    mapping.add_argument("--role", required=True)
    mapping.set_defaults(handler=roles_map)
    listing = actions.add_parser("list", help="a tenant's group-to-role mappings")
    listing.add_argument("tenant", help="tenant name or id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=roles_list)
    unmapping = actions.add_parser("unmap", help="take a role (or every role) from a group")
    _add_tenant_and_group(unmapping)
    unmapping.add_argument("--role", help="only this role (default: every role of the group)")
    unmapping.set_defaults(handler=roles_unmap)


def _add_tenant_and_group(action: argparse.ArgumentParser) -> None:
    action.add_argument("tenant", help="tenant name or id")
    action.add_argument("--group", required=True, metavar="GROUP",
                        help="the group's displayName, id or externalId")
    action.add_argument("--json", action="store_true")


def _role_mappings(settings: Settings) -> RoleMappings:
    return RoleMappings(make_sessions(make_engine(settings, "tool")))


@operator_errors
def roles_map(settings: Settings, args: argparse.Namespace) -> int:
    change = _role_mappings(settings).map(args.tenant, args.group, args.role)
    done = "mapped" if change.changed else "was already mapped"
    text = f"group {args.group!r} {done} to role {args.role!r}; {_users(change)}"
    emit(_change_value(change, args), args.json, text)
    return 0


@operator_errors
def roles_unmap(settings: Settings, args: argparse.Namespace) -> int:
    change = _role_mappings(settings).unmap(args.tenant, args.group, args.role)
    roles = f"role {args.role!r}" if args.role else "every role"
    text = (f"group {args.group!r}: {change.changed} mapping(s) to {roles} removed; "
            f"{_users(change)}")
    emit(_change_value(change, args), args.json, text)
    return 0


@operator_errors
def roles_list(settings: Settings, args: argparse.Namespace) -> int:
    _tenant, mappings = _role_mappings(settings).list(args.tenant)
    rows = [(m.group, m.role, moment(m.created_at)) for m in mappings]
    text = render(("GROUP", "ROLE", "CREATED"), rows) if rows else "(no role mappings)"
    emit([asdict(m) for m in mappings], args.json, text)
    return 0


def _users(change: MappingChange) -> str:
    return f"the roles of {change.users} user(s) of tenant {change.tenant.name} changed"


def _change_value(change: MappingChange, args: argparse.Namespace) -> dict[str, Any]:
    return {"tenant": change.tenant.name, "tenant_id": change.tenant.id, "group": args.group,
            "role": args.role, "changed": change.changed, "users": change.users}
