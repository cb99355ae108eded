"""The application API over real HTTP on SQLite and PostgreSQL, driven through the Python
client (`scimflow.client`): sessions registered, checked and revoked; deprovisioning seen by a
session check as soon as it is acknowledged; roles following group membership; and bad input
refused with a clear 4xx that writes nothing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from scimflow.client import AppApiError, AppClient
from scimflow.pipeline.services.login_policies import LoginPolicies
from scimflow.pipeline.services.role_mappings import RoleMappings
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.store.app_tables import LoginDecision, LoginIdentity
from scimflow.pipeline.store.event_tables import OutboxEvent
from scimflow.pipeline.store.models import AcknowledgedRow, JournalEntry, UserSession
from scimflow.pipeline.store.tenants import TenantRef
from tests.support.app_stack import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    AppStack,
    running_app_stack,
)

ISSUER = "https://acme.okta.com"
ACME = "acme"


@dataclass
class World:
    """One running stack with tenant `acme`, its SCIM token, and a client with a key for it."""

    stack: AppStack
    tenant: TenantRef
    scim_token: str
    key: str
    client: AppClient

    def scim_user(self, user_name: str, external_id: str | None = None) -> str:
        """POST /Users as the IdP does; returns the new id (acknowledged, not applied)."""
        body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name, "active": True}
        if external_id is not None:
            body["externalId"] = external_id
        answer = self.stack.scim(self.scim_token, "POST", "/Users", body)
        assert answer.status == 201, answer
        return str(answer.body["id"])

    def scim_group(self, display_name: str, members: list[str]) -> str:
        body = {"schemas": [GROUP_SCHEMA], "displayName": display_name,
                "members": [{"value": member} for member in members]}
        answer = self.stack.scim(self.scim_token, "POST", "/Groups", body)
        assert answer.status == 201, answer
        return str(answer.body["id"])

    def scim_patch(self, path: str, *operations: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
        answer = self.stack.scim(self.scim_token, "PATCH", path, body)
        assert answer.status in (200, 204), answer

    def deactivate(self, user_id: str) -> None:
        self.scim_patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})

    def events(self, event_type: str) -> list[dict[str, Any]]:
        """The outbox's documents of this type, in order."""
        with self.stack.sessions() as session:
            query = (select(OutboxEvent.payload).where(OutboxEvent.event_type == event_type)
                     .order_by(OutboxEvent.id))
            return list(session.scalars(query))


@pytest.fixture
def world(db_engine: Engine, database_url: str) -> Iterator[World]:
    # `db_engine` prepares the empty schema of `database_url` before the API serves it.
    with running_app_stack(database_url) as stack:
        tenant, scim_token = stack.tenant(ACME)
        LoginPolicies(stack.sessions).update(ACME, issuers=[ISSUER])
        key = stack.app_key(tenant.id)
        yield World(stack, tenant, scim_token, key, AppClient(stack.url, key))


# --- Sessions --------------------------------------------------------------------------------


def test_a_session_is_registered_by_id_external_id_or_user_name(world: World) -> None:
    alice = world.scim_user("alice@acme.com", external_id="00u-alice")
    client = world.client
    by_id = client.register_session(ACME, user_id=alice, session_id="app-1")
    by_external_id = client.register_session(ACME, external_id="00u-alice")
    by_user_name = client.register_session(ACME, user_name="alice@acme.com")

    registered = [by_id, by_external_id, by_user_name]
    assert by_id["id"] == "app-1"
    assert len({session["id"] for session in registered}) == 3
    for session in registered:
        assert session["user_id"] == alice
        assert (session["status"], session["reason"], session["revoked_at"]) == (
            "active", None, None)
        assert session["user"]["userName"] == "alice@acme.com"
        assert client.check_session(ACME, session["id"]) == session
        assert client.is_active(ACME, session["id"])
    listed = client.sessions_of(ACME, alice)
    assert sorted(s["id"] for s in listed) == sorted(s["id"] for s in registered)


def test_an_unknown_session_is_not_active_and_its_check_is_404(world: World) -> None:
    assert world.client.is_active(ACME, "never-registered") is False
    with pytest.raises(AppApiError) as refused:
        world.client.check_session(ACME, "never-registered")
    assert refused.value.status == 404


def test_revoking_one_session_then_all_of_a_user(world: World) -> None:
    alice = world.scim_user("alice@acme.com")
    client = world.client
    ids = [client.register_session(ACME, user_id=alice, session_id=f"s-{n}")["id"]
           for n in range(3)]

    revoked = client.revoke_session(ACME, "s-0")
    assert (revoked["status"], revoked["reason"]) == ("revoked", "application")
    assert revoked["revoked_at"] is not None
    assert not client.is_active(ACME, "s-0")
    assert client.is_active(ACME, "s-1") and client.is_active(ACME, "s-2")
    [event] = world.events("session.revoked")
    assert event["session"]["id"] == "s-0" and event["session"]["reason"] == "application"
    assert event["resource"]["id"] == alice

    after = client.revoke_sessions(ACME, alice)
    assert sorted(s["id"] for s in after) == ids
    assert {(s["status"], s["reason"]) for s in after} == {("revoked", "application")}
    assert not any(client.is_active(ACME, session_id) for session_id in ids)
    # One event per session: the one already revoked is not revoked again.
    assert sorted(e["session"]["id"] for e in world.events("session.revoked")) == ids


def test_deprovisioning_revokes_the_session_as_soon_as_it_is_acknowledged(world: World) -> None:
    alice = world.scim_user("alice@acme.com")
    world.stack.drain()
    session_id = world.client.register_session(ACME, user_id=alice)["id"]

    world.deactivate(alice)
    before_drain = world.client.check_session(ACME, session_id)
    assert (before_drain["status"], before_drain["reason"]) == ("revoked", "deprovisioned")
    assert before_drain["user"]["active"] is False
    assert world.events("session.revoked") == []  # the workers emit it when they apply

    world.stack.drain()
    after_drain = world.client.check_session(ACME, session_id)
    assert (after_drain["status"], after_drain["reason"]) == ("revoked", "deprovisioned")
    [event] = world.events("session.revoked")
    assert event["session"]["id"] == session_id
    assert event["session"]["reason"] == "deprovisioned"


def test_a_scim_delete_revokes_the_session_with_reason_deleted(world: World) -> None:
    alice = world.scim_user("alice@acme.com")
    world.stack.drain()
    session_id = world.client.register_session(ACME, user_id=alice)["id"]

    assert world.stack.scim(world.scim_token, "DELETE", f"/Users/{alice}").status == 204
    for stage in ("acknowledged", "applied"):
        checked = world.client.check_session(ACME, session_id)
        assert (checked["status"], checked["reason"], checked["user"]) == (
            "revoked", "deleted", None), stage
        assert checked["revoked_at"] is not None, stage
        world.stack.drain()
    assert [e["session"]["reason"] for e in world.events("session.revoked")] == ["deleted"]


def test_a_deprovisioned_user_cannot_register_a_session(world: World) -> None:
    alice = world.scim_user("alice@acme.com")
    world.deactivate(alice)
    for stage in ("acknowledged", "applied"):
        with pytest.raises(AppApiError) as refused:
            world.client.register_session(ACME, user_id=alice)
        assert refused.value.status == 403, stage
        assert "deprovisioned" in refused.value.detail, stage
        world.stack.drain()
    assert world.client.sessions_of(ACME, alice) == []


# --- Users -----------------------------------------------------------------------------------


def test_a_user_is_looked_up_by_id_external_id_or_user_name(world: World) -> None:
    alice = world.scim_user("alice@acme.com", external_id="00u-alice")
    expected = {"id": alice, "userName": "alice@acme.com", "externalId": "00u-alice",
                "active": True, "roles": [], "source": "scim"}
    assert world.client.user(ACME, user_id=alice) == expected
    assert world.client.user(ACME, external_id="00u-alice") == expected
    assert world.client.user(ACME, user_name="alice@acme.com") == expected


def test_history_lists_the_users_commands_and_logins(world: World) -> None:
    login = world.client.login(ACME, issuer=ISSUER, subject="00u-bob", user_name="bob@acme.com",
                               email="bob@acme.com", email_verified=True)
    assert (login["decision"], login["action"]) == ("allow", "created")
    bob = login["user"]["id"]
    world.deactivate(bob)
    world.stack.drain()

    history = world.client.history(ACME, bob)
    assert history["user"]["id"] == bob and history["user"]["active"] is False
    assert [(c["operation"], c["status"]) for c in history["commands"]][-1] == (
        "patch", "applied")
    [decision] = history["logins"]
    assert (decision["issuer"], decision["subject"], decision["action"]) == (
        ISSUER, "00u-bob", "created")


# --- Roles following group membership --------------------------------------------------------


def roles_of(world: World, session_id: str) -> list[str]:
    return list(world.client.check_session(ACME, session_id)["user"]["roles"])


def role_changes(world: World) -> list[tuple[list[str], list[str]]]:
    """(added, removed) of each `user.roles_changed` event, in order."""
    return [(e["roles"]["added"], e["roles"]["removed"])
            for e in world.events("user.roles_changed")]


def test_roles_follow_the_users_group_membership(world: World) -> None:
    RoleMappings(world.stack.sessions).map(ACME, "Engineering", "developer")
    alice = world.scim_user("alice@acme.com")
    session_id = world.client.register_session(ACME, user_id=alice)["id"]
    engineering = world.scim_group("Engineering", [alice])
    world.stack.drain()
    assert roles_of(world, session_id) == ["developer"]
    assert world.client.user(ACME, user_id=alice)["roles"] == ["developer"]

    world.scim_patch(f"/Groups/{engineering}",
                     {"op": "remove", "path": f'members[value eq "{alice}"]'})
    world.stack.drain()
    assert roles_of(world, session_id) == []
    assert role_changes(world) == [(["developer"], []), ([], ["developer"])]
    assert {e["resource"]["id"] for e in world.events("user.roles_changed")} == {alice}


def test_renaming_a_group_mapped_by_display_name_drops_its_role(world: World) -> None:
    RoleMappings(world.stack.sessions).map(ACME, "Engineering", "developer")
    alice = world.scim_user("alice@acme.com")
    engineering = world.scim_group("Engineering", [alice])
    world.stack.drain()
    session_id = world.client.register_session(ACME, user_id=alice)["id"]
    assert roles_of(world, session_id) == ["developer"]

    world.scim_patch(f"/Groups/{engineering}",
                     {"op": "replace", "path": "displayName", "value": "Platform"})
    world.stack.drain()
    assert roles_of(world, session_id) == []
    assert role_changes(world)[-1] == ([], ["developer"])


def test_deleting_a_mapped_group_takes_its_role_away(world: World) -> None:
    RoleMappings(world.stack.sessions).map(ACME, "Engineering", "developer")
    alice = world.scim_user("alice@acme.com")
    engineering = world.scim_group("Engineering", [alice])
    world.stack.drain()
    session_id = world.client.register_session(ACME, user_id=alice)["id"]
    assert roles_of(world, session_id) == ["developer"]

    deleted = world.stack.scim(world.scim_token, "DELETE", f"/Groups/{engineering}")
    assert deleted.status == 204, deleted
    world.stack.drain()

    assert roles_of(world, session_id) == []
    assert role_changes(world)[-1] == ([], ["developer"])


def test_session_ids_are_the_tenants_own(world: World) -> None:
    globex, globex_token = world.stack.tenant("globex")
    world.scim_user("alice@acme.com")
    acme_session = world.client.register_session(ACME, user_name="alice@acme.com",
                                                 session_id="shared-1")
    bob = world.stack.scim(globex_token, "POST", "/Users",
                           {"schemas": [USER_SCHEMA], "userName": "bob@globex.com"})
    assert bob.status == 201, bob
    globex_client = AppClient(world.stack.url, world.stack.app_key(globex.id))
    globex_session = globex_client.register_session("globex", user_id=bob.body["id"],
                                                    session_id="shared-1")

    assert (acme_session["user"]["userName"], globex_session["user"]["userName"]) == (
        "alice@acme.com", "bob@globex.com")
    assert world.client.check_session(ACME, "shared-1")["user_id"] == acme_session["user_id"]


def test_a_disabled_tenants_application_api_is_refused(world: World) -> None:
    world.scim_user("alice@acme.com")
    Tenancy(world.stack.sessions).disable(ACME)
    before = row_counts(world)

    refused = refusal(lambda: world.client.login(ACME, issuer=ISSUER, subject="00u-new"))

    assert refused.status == 403, refused
    assert row_counts(world) == before


def test_a_groups_id_has_no_user_history(world: World) -> None:
    alice = world.scim_user("alice@acme.com")
    engineering = world.scim_group("Engineering", [alice])
    assert refusal(lambda: world.client.history(ACME, engineering)).status == 404


# --- Bad input: a clear 4xx, nothing written -------------------------------------------------

WRITTEN_TABLES = (AcknowledgedRow, JournalEntry, UserSession, LoginDecision, LoginIdentity,
                  OutboxEvent)


def row_counts(world: World) -> dict[str, int]:
    with world.stack.sessions() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
                for table in WRITTEN_TABLES}


def raw_request(world: World, method: str, path: str, token: str, data: bytes) -> AppApiError:
    """A request the client cannot make (a malformed body); its refusal, as the client's."""
    request = urllib.request.Request(
        world.stack.url + path, data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raise AssertionError(f"{method} {path} answered {response.status}")
    except urllib.error.HTTPError as error:
        with error:
            status, raw = error.code, error.read()
    body = json.loads(raw)
    assert body["status"] == str(status), body
    return AppApiError(status, body["detail"])


def refusal(call: Callable[[], object]) -> AppApiError:
    with pytest.raises(AppApiError) as refused:
        call()
    return refused.value


BadCall = Callable[[World], AppApiError]


def unknown_tenant(world: World) -> AppApiError:
    client = AppClient(world.stack.url, world.stack.app_key())
    return refusal(lambda: client.register_session("initech", user_name="alice@acme.com"))


def unknown_user_on_register(world: World) -> AppApiError:
    return refusal(lambda: world.client.register_session(ACME, user_name="nobody@acme.com",
                                                         session_id="s-nobody"))


def unknown_user_on_get(world: World) -> AppApiError:
    return refusal(lambda: world.client.user(ACME, user_id="no-such-user"))


def login_without_subject(world: World) -> AppApiError:
    body = json.dumps({"issuer": ISSUER, "email": "eve@acme.com"}).encode()
    return raw_request(world, "POST", f"/app/v1/tenants/{ACME}/logins", world.key, body)


def spoofed_issuer(world: World) -> AppApiError:
    return refusal(lambda: world.client.login(ACME, issuer="https://evil.example",
                                              subject="00u-eve", user_name="eve@acme.com"))


def key_of_another_tenant(world: World) -> AppApiError:
    globex, _ = world.stack.tenant("globex")
    client = AppClient(world.stack.url, world.stack.app_key(globex.id))
    return refusal(lambda: client.register_session(ACME, user_name="alice@acme.com"))


def scim_token_as_application_key(world: World) -> AppApiError:
    client = AppClient(world.stack.url, world.scim_token)
    return refusal(lambda: client.login(ACME, issuer=ISSUER, subject="00u-eve"))


def malformed_json(world: World) -> AppApiError:
    return raw_request(world, "POST", f"/app/v1/tenants/{ACME}/sessions", world.key,
                       b'{"user": {"userName": ')


def body_not_an_object(world: World) -> AppApiError:
    return raw_request(world, "POST", f"/app/v1/tenants/{ACME}/sessions", world.key,
                       b'["alice@acme.com"]')


def session_without_user(world: World) -> AppApiError:
    return raw_request(world, "POST", f"/app/v1/tenants/{ACME}/sessions", world.key,
                       b'{"user": "alice@acme.com"}')


def application_key_on_scim(world: World) -> AppApiError:
    body = json.dumps({"schemas": [USER_SCHEMA], "userName": "eve@acme.com"}).encode()
    return raw_request(world, "POST", "/scim/v2/Users", world.key, body)


def nul_in_subject(world: World) -> AppApiError:
    return refusal(lambda: world.client.login(ACME, issuer=ISSUER, subject="00u\x00eve"))


def lone_surrogate_in_group_claim(world: World) -> AppApiError:
    body = b'{"issuer": "%s", "subject": "00u-eve", "groups": ["\\ud800"]}' % ISSUER.encode()
    return raw_request(world, "POST", f"/app/v1/tenants/{ACME}/logins", world.key, body)


def nul_in_user_name(world: World) -> AppApiError:
    return refusal(lambda: world.client.register_session(ACME, user_name="alice\x00@acme.com"))


def nul_in_tenant(world: World) -> AppApiError:
    return refusal(lambda: world.client.user("ac\x00me", user_name="alice@acme.com"))


def slash_in_session_id(world: World) -> AppApiError:
    return refusal(lambda: world.client.register_session(ACME, user_name="alice@acme.com",
                                                         session_id="a/b"))


BAD_CALLS: list[tuple[BadCall, int]] = [
    (nul_in_subject, 400),
    (lone_surrogate_in_group_claim, 400),
    (nul_in_user_name, 404),
    (nul_in_tenant, 404),
    (slash_in_session_id, 400),
    (unknown_tenant, 404),
    (unknown_user_on_register, 404),
    (unknown_user_on_get, 404),
    (login_without_subject, 400),
    (spoofed_issuer, 403),
    (key_of_another_tenant, 403),
    (scim_token_as_application_key, 401),
    (malformed_json, 400),
    (body_not_an_object, 400),
    (session_without_user, 400),
    (application_key_on_scim, 401),
]


@pytest.mark.parametrize(("bad_call", "status"), BAD_CALLS,
                         ids=[call.__name__ for call, _ in BAD_CALLS])
def test_bad_input_is_refused_clearly_and_writes_nothing(
    world: World, bad_call: BadCall, status: int
) -> None:
    world.scim_user("alice@acme.com")
    world.stack.drain()
    before = row_counts(world)
    refused = bad_call(world)
    assert refused.status == status, refused
    assert refused.detail.strip(), refused
    assert row_counts(world) == before
