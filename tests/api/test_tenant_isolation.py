"""One tenant never sees nor touches another's resources: they answer as if absent."""

from __future__ import annotations

from falcon import testing

from tests.api.conftest import BASE, assert_scim_error, create_group, create_user, scim_body
from tests.conftest import patch_body, read_sample


def test_another_tenants_user_is_404_for_every_method(
    client: testing.TestClient, globex_client: testing.TestClient
) -> None:
    user = create_user(client)
    path = f"{BASE}/Users/{user['id']}"
    deactivate = patch_body({"op": "replace", "value": {"active": False}})

    assert_scim_error(globex_client.simulate_get(path), 404)
    assert_scim_error(globex_client.simulate_patch(path, **scim_body(deactivate)), 404)
    put_body = read_sample("idp/okta/okta-create-user.json")
    assert_scim_error(globex_client.simulate_put(path, **scim_body(put_body)), 404)
    assert_scim_error(globex_client.simulate_delete(path), 404)

    # Acme's user is untouched.
    still = client.simulate_get(path)
    assert still.status_code == 200
    assert still.json["active"] is True


def test_another_tenants_user_cannot_become_a_member(
    client: testing.TestClient, globex_client: testing.TestClient
) -> None:
    acme_user = create_user(client)
    globex_group = create_group(globex_client, "Globex Staff")
    add = patch_body({"op": "add", "path": "members", "value": [{"value": acme_user["id"]}]})
    result = globex_client.simulate_patch(f"{BASE}/Groups/{globex_group['id']}", **scim_body(add))
    assert_scim_error(result, 400, "invalidValue")


def test_searches_see_only_the_tenants_own_resources(
    client: testing.TestClient, globex_client: testing.TestClient
) -> None:
    create_user(client)
    assert globex_client.simulate_get(f"{BASE}/Users").json["totalResults"] == 0
    assert client.simulate_get(f"{BASE}/Users").json["totalResults"] == 1


def test_the_same_user_name_may_exist_in_two_tenants(
    client: testing.TestClient, globex_client: testing.TestClient
) -> None:
    assert create_user(client)["id"] != create_user(globex_client)["id"]
