"""Tenants are isolated and bearer tokens are enforced, over HTTP against the real processes.

Tenant B holds a valid token of its own and knows tenant A's ids; it must not read, change,
find or reference anything of A's, and A's rows in PostgreSQL stay exactly as they were.
Bad credentials get 401 with a SCIM error body; a revoked token is refused once the API's
documented token cache (`token_cache_seconds`) has expired.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from scimflow.pipeline.settings import Settings
from tests.system.idp import ERROR_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, patch_body
from tests.system.stack import Stack

pytestmark = pytest.mark.timeout(180)

SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass(frozen=True)
class Tenant:
    name: str
    id: str
    token: str
    token_id: str


@dataclass(frozen=True)
class Provisioned:
    """Tenant A with one user, and one group that has the user as a member."""

    tenant: Tenant
    user: dict[str, Any]
    group: dict[str, Any]


def new_tenant(stack: Stack, prefix: str) -> Tenant:
    created = stack.create_tenant(f"{prefix}-{uuid.uuid4().hex[:8]}")
    return Tenant(created["tenant"], created["tenant_id"], created["token"], created["token_id"])


def user_body(user_name: str, external_id: str) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": external_id,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "active": True,
    }


def group_body(display_name: str, members: list[str]) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "displayName": display_name,
        "members": [{"value": member} for member in members],
    }


@pytest.fixture
def tenant_a(module_stack: Stack) -> Provisioned:
    tenant = new_tenant(module_stack, "a")
    with module_stack.client(tenant.token) as client:
        user = created(client.post("/Users", json=user_body("ada@a.example", "00u-ada")))
        group = created(client.post("/Groups", json=group_body("Engineers", [user["id"]])))
    module_stack.wait_until_applied(timeout=60)
    return Provisioned(tenant, user, group)


@pytest.fixture
def client_b(module_stack: Stack) -> Iterator[httpx.Client]:
    with module_stack.client(new_tenant(module_stack, "b").token) as client:
        yield client


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_another_tenant_cannot_read_or_write_by_id(
    module_stack: Stack, tenant_a: Provisioned, client_b: httpx.Client
) -> None:
    before = snapshot(module_stack, tenant_a.tenant.id)
    user, group = f"/Users/{tenant_a.user['id']}", f"/Groups/{tenant_a.group['id']}"
    attempts = [
        ("GET", user, None),
        ("PUT", user, user_body("ada@a.example", "00u-ada") | {"active": False}),
        ("PATCH", user, patch_body({"op": "replace", "value": {"active": False}})),
        ("DELETE", user, None),
        ("GET", group, None),
        ("PUT", group, group_body("Taken over", [])),
        ("PATCH", group, patch_body({"op": "replace", "path": "members", "value": []})),
        ("DELETE", group, None),
    ]
    for method, path, body in attempts:
        assert_scim_error(client_b.request(method, path, json=body), 404)

    assert_unchanged(module_stack, tenant_a, before)


def test_another_tenant_finds_nothing_in_searches(
    module_stack: Stack, tenant_a: Provisioned, client_b: httpx.Client
) -> None:
    user_filters = ['userName eq "ada@a.example"', 'externalId eq "00u-ada"',
                    f'id eq "{tenant_a.user["id"]}"']
    with module_stack.client(tenant_a.tenant.token) as client_a:
        for query in user_filters:  # the same searches do find A's user for A
            assert total(client_a.get("/Users", params={"filter": query})) == 1
        for query in user_filters:
            assert total(client_b.get("/Users", params={"filter": query})) == 0
            search = {"schemas": [SEARCH_SCHEMA], "filter": query}
            assert total(client_b.post("/Users/.search", json=search)) == 0
            assert total(client_b.post("/.search", json=search)) == 0
        assert total(client_b.get("/Users")) == 0
        assert total(client_b.get("/Groups")) == 0
        assert total(client_b.get("/Groups", params={"filter": 'displayName eq "Engineers"'})) == 0
        member_filter = f'members[value eq "{tenant_a.user["id"]}"]'
        assert total(client_a.get("/Groups", params={"filter": member_filter})) == 1
        assert total(client_b.get("/Groups", params={"filter": member_filter})) == 0


def test_another_tenant_cannot_reference_members(
    module_stack: Stack, tenant_a: Provisioned, client_b: httpx.Client
) -> None:
    before = snapshot(module_stack, tenant_a.tenant.id)
    foreign = tenant_a.user["id"]
    own_group = created(client_b.post("/Groups", json=group_body("Engineers", [])))
    path = f"/Groups/{own_group['id']}"

    add = patch_body({"op": "add", "path": "members", "value": [{"value": foreign}]})
    assert_scim_error(client_b.patch(path, json=add), 400, "invalidValue")
    entra_add = patch_body(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": foreign}]}
    )
    assert_scim_error(client_b.patch(path, json=entra_add), 400, "invalidValue")
    assert_scim_error(client_b.put(path, json=group_body("Engineers", [foreign])), 400,
                      "invalidValue")
    assert_scim_error(client_b.post("/Groups", json=group_body("Others", [foreign])), 400,
                      "invalidValue")

    module_stack.wait_until_applied(timeout=60)
    assert module_stack.sql(
        "SELECT count(*) FROM memberships WHERE group_id = :g", g=own_group["id"]
    )[0][0] == 0
    assert_unchanged(module_stack, tenant_a, before)


def test_unique_keys_are_per_tenant(
    module_stack: Stack, tenant_a: Provisioned, client_b: httpx.Client
) -> None:
    """B may hold A's userName, externalId and group name: B's are other resources."""
    before = snapshot(module_stack, tenant_a.tenant.id)
    user = created(client_b.post("/Users", json=user_body("ada@a.example", "00u-ada")))
    group = created(client_b.post("/Groups", json=group_body("Engineers", [user["id"]])))
    assert user["id"] != tenant_a.user["id"]
    assert group["id"] != tenant_a.group["id"]
    module_stack.wait_until_applied(timeout=60)
    assert_unchanged(module_stack, tenant_a, before)


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer", id="malformed-no-token"),
        pytest.param("Basic YWRtaW46YWRtaW4=", id="malformed-basic"),
        pytest.param("{token}", id="malformed-no-scheme"),
        pytest.param("Token {token}", id="malformed-other-scheme"),
        pytest.param("Bearer scimflow_{random}", id="wrong"),
        pytest.param("Bearer {token}x", id="wrong-suffix"),
    ],
)
def test_bad_credentials_get_401(module_stack: Stack, authorization: str | None) -> None:
    tenant = new_tenant(module_stack, "auth")
    headers = {"Content-Type": "application/scim+json"}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=tenant.token,
                                                        random=uuid.uuid4().hex)
    with httpx.Client(base_url=module_stack.base_url, headers=headers, timeout=30) as client:
        assert_refused(module_stack, client, tenant)


def test_revoked_token_gets_401(module_stack: Stack) -> None:
    tenant = new_tenant(module_stack, "revoked")
    with module_stack.client(tenant.token) as client:
        assert client.get("/Users").status_code == 200
        revoke(module_stack, tenant.name)
        assert_refused(module_stack, client, tenant)


def test_rotated_token_works_and_the_old_one_until_revoked(module_stack: Stack) -> None:
    tenant = new_tenant(module_stack, "rotated")
    rotated = json.loads(module_stack.run(["scimflow", "token", "rotate", tenant.name, "--json"]))
    assert rotated["tenant_id"] == tenant.id
    assert rotated["token"] != tenant.token
    with module_stack.client(tenant.token) as old, module_stack.client(rotated["token"]) as new:
        # Both work, and both are the same tenant: each sees what the other wrote.
        written = created(old.post("/Users", json=user_body("old@r.example", "00u-old")))
        assert new.get(f"/Users/{written['id']}").status_code == 200
        created(new.post("/Users", json=user_body("new@r.example", "00u-new")))
        assert total(old.get("/Users")) == 2

        revoke(module_stack, tenant.name, "--token-id", tenant.token_id)
        assert_refused(module_stack, old, tenant)
        assert total(new.get("/Users")) == 2

        revoke(module_stack, tenant.name)  # every token of the tenant: the rotated one is left
        assert_refused(module_stack, new, tenant)


def revoke(stack: Stack, *arguments: str) -> None:
    """Revoke one token with the CLI, then wait as long as a revocation may take.

    An API process may keep accepting a token it authenticated for `token_cache_seconds`
    (pipeline/services/tenancy.py: "a revocation therefore takes effect within that time").
    """
    revoked = json.loads(stack.run(["scimflow", "token", "revoke", *arguments, "--json"]))
    assert revoked == {"revoked": 1}
    settings = Settings.from_env(stack.env)
    time.sleep(float(getattr(settings, "token_cache_seconds", 0.0)) + 0.5)


def assert_refused(stack: Stack, client: httpx.Client, tenant: Tenant) -> None:
    """Reads and writes get 401 with a SCIM error and a Bearer challenge; nothing journaled."""
    journaled = journal_entries(stack, tenant.id)
    responses = [
        client.get("/Users"),
        client.get("/ServiceProviderConfig"),
        client.post("/Users", json=user_body(f"{uuid.uuid4().hex}@x.example", "00u-x")),
        client.patch(f"/Users/{uuid.uuid4()}",
                     json=patch_body({"op": "replace", "value": {"active": False}})),
    ]
    for response in responses:
        assert_scim_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert journal_entries(stack, tenant.id) == journaled


# --- helpers ---------------------------------------------------------------------------------


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, (response.request.method, response.request.url,
                                            response.text)
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body


def total(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    found: int = response.json()["totalResults"]
    assert found == len(response.json()["Resources"])
    return found


def journal_entries(stack: Stack, tenant_id: str) -> int:
    return int(stack.sql("SELECT count(*) FROM journal WHERE tenant_id = :t", t=tenant_id)[0][0])


SNAPSHOT_QUERIES = {
    "resources": "SELECT id, resource_type, version, data, user_name_key, external_id,"
                 " display_name_key FROM resources WHERE tenant_id = :t ORDER BY id",
    "users": "SELECT id, user_name, external_id, active, data, version, journal_seq"
             " FROM users WHERE tenant_id = :t ORDER BY id",
    "groups": "SELECT id, display_name, external_id, data, version, journal_seq"
              " FROM groups WHERE tenant_id = :t ORDER BY id",
    "memberships": "SELECT group_id, member_id, member_type, display FROM memberships"
                   " WHERE tenant_id = :t ORDER BY group_id, member_id",
    "journal": "SELECT seq, resource_id, kind, status FROM journal WHERE tenant_id = :t"
               " ORDER BY seq",
    "outbox": "SELECT id, event_id, event_type, resource_id, payload::text FROM outbox"
              " WHERE tenant_id = :t ORDER BY id",
}


def snapshot(stack: Stack, tenant_id: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: [tuple(row) for row in stack.sql(query, t=tenant_id)]
        for name, query in SNAPSHOT_QUERIES.items()
    }


def assert_unchanged(stack: Stack, tenant: Provisioned, before: dict[str, Any]) -> None:
    after = snapshot(stack, tenant.tenant.id)
    assert after == before
    assert len(after["users"]) == len(after["groups"]) == len(after["memberships"]) == 1
    assert [row[2] for row in after["outbox"]] == [
        "user.created", "group.created", "group.member_added"]
    # No other tenant's event names A's user or group (as its resource or as a member).
    foreign = stack.sql(
        "SELECT count(*) FROM outbox WHERE tenant_id <> :t"
        " AND (payload::text LIKE :user OR payload::text LIKE :group)",
        t=tenant.tenant.id, user=f"%{tenant.user['id']}%", group=f"%{tenant.group['id']}%",
    )[0][0]
    assert foreign == 0
    with stack.client(tenant.tenant.token) as client:
        assert client.get(f"/Users/{tenant.user['id']}").status_code == 200
        assert client.get(f"/Groups/{tenant.group['id']}").json()["members"][0]["value"] == (
            tenant.user["id"]
        )
