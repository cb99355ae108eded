"""The request sequences Okta and Entra really send (tests/samples/idp), end to end."""

from __future__ import annotations

from typing import Any

from falcon import testing

from tests.api.conftest import BASE, LIST_SCHEMA, create_group, scim_body
from tests.conftest import read_sample

OKTA_USER = "test.user@okta.local"


def test_okta_assignment_and_deactivation(client: testing.TestClient) -> None:
    lookup = {"query_string": f'filter=userName eq "{OKTA_USER}"&startIndex=1&count=100'}

    # Existence check: an empty ListResponse, with integers, is Okta's "not found".
    missing = client.simulate_get(f"{BASE}/Users", **lookup)
    assert missing.status_code == 200
    assert missing.json["schemas"] == [LIST_SCHEMA]
    assert missing.json["totalResults"] == 0
    assert missing.json["Resources"] == []
    assert all(isinstance(missing.json[k], int) for k in ("totalResults", "startIndex"))

    created = client.simulate_post(
        f"{BASE}/Users", **scim_body(read_sample("idp/okta/okta-create-user.json"))
    )
    assert created.status_code == 201
    user_id = created.json["id"]

    # Read-your-writes: the look-up finds the user before any worker has run.
    found = client.simulate_get(f"{BASE}/Users", **lookup).json
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == user_id

    deactivated = client.simulate_patch(
        f"{BASE}/Users/{user_id}", **scim_body(read_sample("idp/okta/okta-patch-deactivate.json"))
    )
    assert deactivated.status_code == 200
    assert deactivated.json["active"] is False


def test_okta_test_connection_probe(client: testing.TestClient) -> None:
    result = client.simulate_get(f"{BASE}/Users", query_string="startIndex=1&count=2")
    assert result.status_code == 200
    assert result.json["totalResults"] == 0


def test_entra_user_and_group_provisioning(client: testing.TestClient) -> None:
    user_sample = read_sample("idp/entra/entra-create-user.json")
    created = client.simulate_post(f"{BASE}/Users", **scim_body(user_sample))
    assert created.status_code == 201
    user = created.json
    assert user["externalId"] == user_sample["externalId"]

    # Entra matches on externalId, spaces sent as '+'.
    match = client.simulate_get(
        f"{BASE}/Users", query_string=f"filter=externalId+eq+%22{user_sample['externalId']}%22"
    )
    assert [u["id"] for u in match.json["Resources"]] == [user["id"]]

    disabled = client.simulate_patch(
        f"{BASE}/Users/{user['id']}", **scim_body(read_sample("idp/entra/entra-patch-disable.json"))
    )
    assert disabled.status_code == 200
    assert disabled.json["active"] is False

    group = client.simulate_post(
        f"{BASE}/Groups", **scim_body(read_sample("idp/entra/entra-create-group.json"))
    )
    assert group.status_code == 201
    group_path = f"{BASE}/Groups/{group.json['id']}"

    add = _with_member_ids(read_sample("idp/entra/entra-patch-add-members.json"), [user["id"]])
    assert client.simulate_patch(group_path, **scim_body(add)).status_code == 204

    remove = _with_member_ids(
        read_sample("idp/entra/entra-patch-remove-members-value-array.json"), [user["id"]]
    )
    assert client.simulate_patch(group_path, **scim_body(remove)).status_code == 204


def test_entra_group_match_excluding_members(client: testing.TestClient) -> None:
    group = create_group(client, "Sales")
    result = client.simulate_get(
        f"{BASE}/Groups",
        query_string='excludedAttributes=members&filter=displayName eq "Sales"',
    )
    assert [g["id"] for g in result.json["Resources"]] == [group["id"]]
    assert "members" not in result.json["Resources"][0]


def _with_member_ids(patch: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    """The captured PATCH, pointed at members that exist in this test's tenant."""
    operation = patch["Operations"][0]
    operation["value"] = [dict(operation["value"][0], value=member) for member in ids]
    return patch
