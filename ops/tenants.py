"""`scimflow tenant …` and `scimflow token …`: tenants, their state, their login policy and their
bearer tokens.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any, TypeAlias

from scimflow.ops.output import base_url, emit, moment, operator_errors
from scimflow.ops.table import render
from scimflow.pipeline.login_rules import LoginPolicy
from scimflow.pipeline.services.login_policies import LoginPolicies
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.tenants import IssuedToken, TenantRef

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

def add_parsers(commands: Commands) -> None:
    _add_tenant(commands)
    _add_token(commands)


def _add_tenant(commands: Commands) -> None:
    tenant = commands.add_parser("tenant", help="create, list, disable, enable, delete tenants")
    actions = tenant.add_subparsers(title="tenant commands", metavar="COMMAND")
    create = actions.add_parser("create", help="create a tenant and its first token")
    create.add_argument("name")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=tenant_create)
    listing = actions.add_parser("list", help="list tenants")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=tenant_list)
    for name, handler, text in (
        ("disable", tenant_disable, "stop a tenant's tokens authenticating (work it sent "
                                    "still applies)"),
        ("enable", tenant_enable, "let a disabled tenant's tokens authenticate again"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("tenant", help="tenant name or id")
        action.set_defaults(handler=handler)
    delete = actions.add_parser("delete", help="delete a disabled tenant and all its data")
    delete.add_argument("tenant", help="tenant name or id")
    delete.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    delete.add_argument("--json", action="store_true")
    delete.set_defaults(handler=tenant_delete)
    _add_policy(actions)


def _add_policy(actions: Commands) -> None:
    policy = actions.add_parser("policy", help="show or change a tenant's login policy")
    policy.add_argument("tenant", help="tenant name or id")
    # No `choices`: the service names the modes it knows when it refuses one.
    policy.add_argument("--mode", help="scim-authoritative, jit-then-scim or jit-only")
    policy.add_argument("--issuer", action="append", dest="issuers", metavar="URL",
                        help="an identity provider logins may come from; repeat for several; "
                             "replaces the list")
    policy.add_argument("--match-verified-email", action=argparse.BooleanOptionalAction,
                        help="whether a verified email may link a login to a user")
    policy.add_argument("--sync-attributes", action=argparse.BooleanOptionalAction,
                        help="whether a login updates a user SCIM does not own")
    policy.add_argument("--json", action="store_true")
    policy.set_defaults(handler=tenant_policy)


def _add_token(commands: Commands) -> None:
    token = commands.add_parser("token", help="list, rotate or revoke bearer tokens")
    actions = token.add_subparsers(title="token commands", metavar="COMMAND")
    listing = actions.add_parser("list", help="a tenant's tokens (never their secrets)")
    listing.add_argument("tenant", help="tenant name or id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=token_list)
    rotate = actions.add_parser("rotate", help="issue a new token for a tenant")
    rotate.add_argument("tenant", help="tenant name or id")
    rotate.add_argument("--revoke-others", action="store_true",
                        help="revoke every older token of the tenant")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=token_rotate)
    revoke = actions.add_parser("revoke", help="revoke a tenant's tokens")
    revoke.add_argument("tenant", help="tenant name or id")
    revoke.add_argument("--token-id", help="revoke only this token")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(handler=token_revoke)


def _tenancy(settings: Settings) -> Tenancy:
    return Tenancy(make_sessions(make_engine(settings, "tool")))


def _token_output(settings: Settings, issued: IssuedToken, as_json: bool) -> None:
    value = {"tenant": issued.tenant.name, "tenant_id": issued.tenant.id,
             "base_url": base_url(settings), "token": issued.secret, "token_id": issued.id}
    text = (f"tenant:   {issued.tenant.name} ({issued.tenant.id})\n"
            f"base URL: {base_url(settings)}\n"
            f"token:    {issued.secret}\n"
            "The token is shown once; store it in your IdP's SCIM settings now.")
    emit(value, as_json, text)


def tenant_create(settings: Settings, args: argparse.Namespace) -> int:
    _token_output(settings, _tenancy(settings).create(args.name), args.json)
    return 0


def tenant_list(settings: Settings, args: argparse.Namespace) -> int:
    tenants = _tenancy(settings).all()
    rows = [(t.name, t.id, "disabled" if t.disabled_at else "enabled", moment(t.created_at))
            for t in tenants]
    text = render(("NAME", "ID", "STATE", "CREATED"), rows) if rows else "(no tenants)"
    emit([asdict(t) for t in tenants], args.json, text)
    return 0


def tenant_disable(settings: Settings, args: argparse.Namespace) -> int:
    tenant = _tenancy(settings).disable(args.tenant)
    print(f"tenant {tenant.name} disabled: its tokens stop authenticating within "
          f"{settings.token_cache_seconds:g} s; work it already sent still applies")
    return 0


def tenant_enable(settings: Settings, args: argparse.Namespace) -> int:
    tenant = _tenancy(settings).enable(args.tenant)
    print(f"tenant {tenant.name} enabled")
    return 0


def tenant_delete(settings: Settings, args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"error: deleting tenant {args.tenant!r} removes all its users, groups and "
              "history; repeat with --yes to confirm", file=sys.stderr)
        return 2
    tenant, counts = _tenancy(settings).delete(args.tenant)
    deleted = ", ".join(f"{count} {table}" for table, count in counts.items() if count)
    emit({"tenant": tenant.name, "tenant_id": tenant.id, "deleted": counts}, args.json,
         f"tenant {tenant.name} deleted ({deleted or 'no data'})")
    return 0


def token_list(settings: Settings, args: argparse.Namespace) -> int:
    tokens = _tenancy(settings).tokens(args.tenant)
    rows = [(t.id, t.label, moment(t.created_at), moment(t.revoked_at)) for t in tokens]
    text = render(("ID", "LABEL", "CREATED", "REVOKED"), rows) if rows else "(no tokens)"
    emit([asdict(t) for t in tokens], args.json, text)
    return 0


def token_rotate(settings: Settings, args: argparse.Namespace) -> int:
    issued = _tenancy(settings).rotate(args.tenant, revoke_others=args.revoke_others)
    _token_output(settings, issued, args.json)
    return 0


def token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    count = _tenancy(settings).revoke(args.tenant, args.token_id)
    emit({"revoked": count}, args.json, f"revoked {count} token(s)")
    return 0


@operator_errors
def tenant_policy(settings: Settings, args: argparse.Namespace) -> int:
    policies = LoginPolicies(make_sessions(make_engine(settings, "tool")))
    changes = _policy_changes(args)
    tenant, policy = (policies.update(args.tenant, **changes) if changes
                      else policies.get(args.tenant))
    emit(_policy_value(tenant, policy), args.json, _policy_text(tenant, policy))
    return 0


def _policy_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line; the rest of the policy stays as it is."""
    given = {"mode": args.mode, "issuers": args.issuers,
             "match_verified_email": args.match_verified_email,
             "sync_attributes": args.sync_attributes}
    return {name: value for name, value in given.items() if value is not None}


def _policy_value(tenant: TenantRef, policy: LoginPolicy) -> dict[str, Any]:
    return {"tenant": tenant.name, "tenant_id": tenant.id, "mode": policy.mode.value,
            "issuers": list(policy.issuers), "match_verified_email": policy.match_verified_email,
            "sync_attributes": policy.sync_attributes}


def _policy_text(tenant: TenantRef, policy: LoginPolicy) -> str:
    issuers = ", ".join(policy.issuers) or "(none: every login is refused)"
    return (f"tenant:               {tenant.name} ({tenant.id})\n"
            f"mode:                 {policy.mode.value}\n"
            f"issuers:              {issuers}\n"
            f"match verified email: {_yes_no(policy.match_verified_email)}\n"
            f"sync attributes:      {_yes_no(policy.sync_attributes)}")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
