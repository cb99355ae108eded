"""Attributes that are never returned are never searchable (RFC 7643 §2.2, RFC 7644 §3.12).

A filter's answer (totalResults 1 or 0) or a page's order would otherwise read out, a few
characters per request, the password hash or a tenant's write-only extension attribute,
which no response ever shows. Every such filter or sortBy is 400 invalidFilter, wherever the
attribute appears in the expression and whichever path (SQL, memory, existence check) runs it.
"""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from scimflow.api.services import ApiServices
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.store.tenant_schemas import Declared
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import (
    BASE,
    assert_scim_error,
    client_for,
    create_user,
    scim_body,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
USER_NAME = "okta.user@example.test"
# Every stored hash starts with this; today's leak began by confirming it.
HASH_PREFIX = "pbkdf2_sha256$"

VAULT = "urn:example:acme:2.0:Vault"
VAULT_SCHEMA: dict[str, Any] = {
    "id": VAULT,
    "name": "Vault",
    "description": "Acme's door codes",
    "attributes": [
        {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
        {"name": "label", "type": "string"},
        {"name": "keys", "type": "complex", "multiValued": True, "subAttributes": [
            {"name": "type", "type": "string"},
            {"name": "secret", "type": "string", "mutability": "writeOnly",
             "returned": "never"},
        ]},
    ],
}


def search(**parameters: Any) -> dict[str, Any]:
    return scim_body({"schemas": [SEARCH_REQUEST], **parameters})


@pytest.fixture
def with_password(client: testing.TestClient) -> dict[str, Any]:
    user = create_user(client, userName=USER_NAME)
    assert "password" not in user  # returned "never": no response shows it
    return user


@pytest.mark.parametrize(
    "filter_text",
    [
        f'password eq "{HASH_PREFIX}"',
        f'userName eq "{USER_NAME}" and password sw "{HASH_PREFIX}"',
        'password co "$"',
        "password pr",
        'password gt "a"',
        'password ew "="',
        'not (password pr)',
        f'userName eq "nobody" or password sw "{HASH_PREFIX}"',
        f'emails[type eq "work"] and password sw "{HASH_PREFIX}"',
        f'urn:ietf:params:scim:schemas:core:2.0:User:password sw "{HASH_PREFIX}"',
        'PASSWORD pr',
    ],
)
def test_filtering_users_on_the_password_is_invalid_filter(
    client: testing.TestClient, with_password: dict[str, Any], filter_text: str
) -> None:
    result = client.simulate_get(f"{BASE}/Users", params={"filter": filter_text})
    assert_scim_error(result, 400, "invalidFilter")


def test_sorting_users_by_the_password_is_invalid_filter(
    client: testing.TestClient, with_password: dict[str, Any]
) -> None:
    result = client.simulate_get(f"{BASE}/Users", params={"sortBy": "password"})
    assert_scim_error(result, 400, "invalidFilter")
    result = client.simulate_post(f"{BASE}/Users/.search", **search(sortBy="password"))
    assert_scim_error(result, 400, "invalidFilter")
    # Only the password is refused: the same user is found and sorted by what is returned.
    page = client.simulate_get(
        f"{BASE}/Users", params={"filter": f'userName eq "{USER_NAME}"', "sortBy": "userName"}
    ).json
    assert [r["id"] for r in page["Resources"]] == [with_password["id"]]


@pytest.mark.parametrize("endpoint", ["/Users/.search", "/.search"])
def test_searching_on_the_password_by_post_is_invalid_filter(
    client: testing.TestClient, with_password: dict[str, Any], endpoint: str
) -> None:
    for filter_text in (f'password sw "{HASH_PREFIX}"', "password pr"):
        result = client.simulate_post(f"{BASE}{endpoint}", **search(filter=filter_text))
        assert_scim_error(result, 400, "invalidFilter")


# --- A tenant's own extension attributes that are never returned -----------------------------


@pytest.fixture
def vault_client(
    tenant_services: ApiServices, protocols: TenantProtocols, acme: IssuedToken
) -> testing.TestClient:
    """Acme's client, after acme declared the Vault extension and created a user with it."""
    protocols.declare(acme.tenant.id, Declared("User", VAULT_SCHEMA, required=False))
    client = client_for(tenant_services, acme)
    created = client.simulate_post(f"{BASE}/Users", json={
        "schemas": [USER, VAULT], "userName": "ada",
        VAULT: {"pin": "4711", "label": "front door",
                "keys": [{"type": "garage", "secret": "s3cret"}]},
    })
    assert created.status_code == 201, created.text
    assert created.json[VAULT] == {"label": "front door", "keys": [{"type": "garage"}]}
    return client


@pytest.mark.parametrize(
    "filter_text",
    [
        f'{VAULT}:pin eq "4711"',
        f'{VAULT}:pin sw "4"',
        f'{VAULT}:pin pr',
        f'userName eq "ada" and {VAULT}:pin gt "4"',
        f'{VAULT}:keys.secret co "cr"',
        f'{VAULT}:keys[type eq "garage" and secret sw "s"]',
        f'{VAULT}:keys[secret pr]',
    ],
)
def test_filtering_on_a_tenants_never_returned_attribute_is_invalid_filter(
    vault_client: testing.TestClient, filter_text: str
) -> None:
    result = vault_client.simulate_get(f"{BASE}/Users", params={"filter": filter_text})
    assert_scim_error(result, 400, "invalidFilter")
    result = vault_client.simulate_post(f"{BASE}/.search", **search(filter=filter_text))
    assert_scim_error(result, 400, "invalidFilter")


@pytest.mark.parametrize("sort_by", [f"{VAULT}:pin", f"{VAULT}:keys.secret"])
def test_sorting_by_a_tenants_never_returned_attribute_is_invalid_filter(
    vault_client: testing.TestClient, sort_by: str
) -> None:
    result = vault_client.simulate_get(f"{BASE}/Users", params={"sortBy": sort_by})
    assert_scim_error(result, 400, "invalidFilter")
    # The extension's returned attributes stay searchable and sortable.
    for filter_text in (f'{VAULT}:label sw "front"', f'{VAULT}:keys[type eq "garage"]',
                        f"{VAULT}:keys pr"):
        page = vault_client.simulate_get(
            f"{BASE}/Users", params={"filter": filter_text, "sortBy": f"{VAULT}:keys.type"}
        ).json
        assert page["totalResults"] == 1, filter_text
