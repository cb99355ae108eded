"""`scimflow tenant policy` and `scimflow roles …` on SQLite and PostgreSQL: showing and changing
a tenant's login policy, mapping groups to roles (which changes the roles of the groups' applied
members at once and writes `user.roles_changed` events), and an operator's mistakes (exit code 2).

Each command runs in-process through `scimflow.ops.cli.main`, exactly as the console script does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.event_tables import OutboxEvent
from scimflow.pipeline.store.roles import roles_of
from scimflow.pipeline.store.tenants import TenantRef
from tests.integration.conftest import Services
from tests.support.cli import Cli

ISSUER = "https://acme.okta.example"
OTHER_ISSUER = "https://login.acme.example"




@pytest.fixture
def acme(services: Services) -> TenantRef:
    return services.tenant("acme")


def _json(cli: Cli, *argv: str) -> Any:
    code, out, err = cli(*argv, "--json")
    assert (code, err) == (0, "")
    return json.loads(out)


def _roles(services: Services, tenant: TenantRef, *user_ids: str) -> dict[str, tuple[str, ...]]:
    with unit_of_work(services.sessions) as session:
        found = roles_of(session, [(tenant.id, user_id) for user_id in user_ids])
    return {user_id: roles for (_tenant, user_id), roles in found.items()}


def _role_events(services: Services) -> list[tuple[str, dict[str, Any]]]:
    """(user id, the event's `roles` member) of every `user.roles_changed` event, in order."""
    with unit_of_work(services.sessions) as session:
        rows = session.execute(
            select(OutboxEvent.resource_id, OutboxEvent.payload)
            .where(OutboxEvent.event_type == "user.roles_changed").order_by(OutboxEvent.id)
        ).all()
    return [(user_id, payload["roles"]) for user_id, payload in rows]


# --- Login policy ----------------------------------------------------------------------------


def test_policy_shows_the_default_of_a_tenant_that_never_set_one(cli: Cli, acme: TenantRef) -> None:
    code, out, err = cli("tenant", "policy", "acme")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"tenant:               acme ({acme.id})",
        "mode:                 jit-then-scim",
        "issuers:              (none: every login is refused)",
        "match verified email: no",
        "sync attributes:      yes",
    ]
    assert _json(cli, "tenant", "policy", acme.id) == {
        "tenant": "acme", "tenant_id": acme.id, "mode": "jit-then-scim", "issuers": [],
        "match_verified_email": False, "sync_attributes": True}


def test_policy_options_change_what_they_name_and_keep_the_rest(
    cli: Cli, acme: TenantRef
) -> None:
    updated = _json(cli, "tenant", "policy", "acme", "--mode", "scim-authoritative",
                    "--issuer", ISSUER, "--issuer", OTHER_ISSUER, "--match-verified-email",
                    "--no-sync-attributes")
    assert updated == {"tenant": "acme", "tenant_id": acme.id, "mode": "scim-authoritative",
                       "issuers": [ISSUER, OTHER_ISSUER], "match_verified_email": True,
                       "sync_attributes": False}
    assert _json(cli, "tenant", "policy", "acme") == updated

    # --issuer replaces the list; nothing else named stays as it was.
    code, out, _ = cli("tenant", "policy", "acme", "--issuer", OTHER_ISSUER,
                       "--no-match-verified-email")
    assert code == 0 and f"issuers:              {OTHER_ISSUER}\n" in out
    assert _json(cli, "tenant", "policy", "acme") == {
        **updated, "issuers": [OTHER_ISSUER], "match_verified_email": False}
    assert _json(cli, "tenant", "policy", "acme", "--mode", "jit-only",
                 "--sync-attributes")["mode"] == "jit-only"
    assert _json(cli, "tenant", "policy", "acme")["sync_attributes"] is True


def test_an_unknown_mode_is_refused_with_exit_code_2_and_changes_nothing(
    cli: Cli, acme: TenantRef
) -> None:
    code, out, err = cli("tenant", "policy", "acme", "--mode", "strict", "--issuer", ISSUER)
    assert (code, out) == (2, "")
    assert err == ("error: Unknown login policy 'strict'; one of: scim-authoritative, "
                   "jit-then-scim, jit-only.\n")
    assert _json(cli, "tenant", "policy", "acme")["issuers"] == []


# --- Operator mistakes -----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ("tenant", "policy", "initech"),
    ("tenant", "policy", "initech", "--mode", "jit-only"),
    ("roles", "map", "initech", "--group", "Engineering", "--role", "developer"),
    ("roles", "list", "initech"),
    ("roles", "unmap", "initech", "--group", "Engineering"),
])
def test_an_unknown_tenant_is_said_on_stderr_with_exit_code_2(
    cli: Cli, acme: TenantRef, argv: tuple[str, ...]
) -> None:
    assert cli(*argv) == (2, "", "error: No tenant 'initech'.\n")


def test_a_blank_role_is_refused_with_exit_code_2(cli: Cli, acme: TenantRef) -> None:
    code, out, err = cli("roles", "map", "acme", "--group", "Engineering", "--role", " ")
    assert (code, out) == (2, "")
    assert err == "error: A role is 1 to 200 printable characters.\n"
    assert cli("roles", "list", "acme")[1] == "(no role mappings)\n"


# --- Roles -----------------------------------------------------------------------------------


def test_mapping_a_group_gives_its_applied_members_the_role_and_tells_the_application(
    cli: Cli, services: Services, acme: TenantRef
) -> None:
    alice = services.user(acme, "alice@acme.example")
    bob = services.user(acme, "bob@acme.example")
    services.group(acme, "Engineering", [alice])
    services.drain()

    mapped = _json(cli, "roles", "map", "acme", "--group", "Engineering", "--role", "developer")
    assert mapped == {"tenant": "acme", "tenant_id": acme.id, "group": "Engineering",
                      "role": "developer", "changed": 1, "users": 1}
    assert _roles(services, acme, alice, bob) == {alice: ("developer",)}
    assert _role_events(services) == [
        (alice, {"roles": ["developer"], "added": ["developer"], "removed": []})]

    # The same mapping again changes nothing and tells nobody.
    code, out, _ = cli("roles", "map", "acme", "--group", "Engineering", "--role", "developer")
    assert (code, out) == (0, "group 'Engineering' was already mapped to role 'developer'; "
                              "the roles of 0 user(s) of tenant acme changed\n")
    assert len(_role_events(services)) == 1


def test_roles_list_shows_each_mapping(cli: Cli, services: Services, acme: TenantRef) -> None:
    assert cli("roles", "list", "acme") == (0, "(no role mappings)\n", "")
    code, out, _ = cli("roles", "map", "acme", "--group", "Engineering", "--role", "developer")
    assert (code, out) == (0, "group 'Engineering' mapped to role 'developer'; the roles of "
                              "0 user(s) of tenant acme changed\n")
    cli("roles", "map", "acme", "--group", "Engineering", "--role", "on-call")

    lines = cli("roles", "list", "acme")[1].splitlines()
    assert lines[0].split() == ["GROUP", "ROLE", "CREATED"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["Engineering", "developer"], ["Engineering", "on-call"]]
    listed = _json(cli, "roles", "list", "acme")
    assert [(m["group"], m["role"]) for m in listed] == [
        ("Engineering", "developer"), ("Engineering", "on-call")]
    assert all(m["created_at"] for m in listed)


def test_unmapping_takes_the_roles_away_and_tells_the_application_again(
    cli: Cli, services: Services, acme: TenantRef
) -> None:
    alice = services.user(acme, "alice@acme.example")
    group_id = services.group(acme, "Engineering", [alice])
    services.drain()
    cli("roles", "map", "acme", "--group", "Engineering", "--role", "developer")
    cli("roles", "map", "acme", "--group", group_id, "--role", "on-call")
    assert _roles(services, acme, alice) == {alice: ("developer", "on-call")}

    unmapped = _json(cli, "roles", "unmap", "acme", "--group", "Engineering", "--role",
                     "developer")
    assert (unmapped["changed"], unmapped["users"]) == (1, 1)
    assert _roles(services, acme, alice) == {alice: ("on-call",)}
    assert _role_events(services)[-1] == (
        alice, {"roles": ["on-call"], "added": [], "removed": ["developer"]})

    code, out, _ = cli("roles", "unmap", "acme", "--group", group_id)
    assert (code, out) == (0, f"group '{group_id}': 1 mapping(s) to every role removed; the "
                              "roles of 1 user(s) of tenant acme changed\n")
    assert _roles(services, acme, alice) == {}
    assert _role_events(services)[-1] == (
        alice, {"roles": [], "added": [], "removed": ["on-call"]})
    assert len(_role_events(services)) == 4
    assert cli("roles", "list", "acme")[1] == "(no role mappings)\n"
