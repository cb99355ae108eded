"""Users and Groups: statuses, headers and bodies of create, read, replace, patch, delete."""

from __future__ import annotations

import re

import pytest
from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer
from tests.api.conftest import (
    BASE,
    LIST_SCHEMA,
    PUBLIC_URL,
    RecordingDispatcher,
    assert_scim_error,
    create_group,
    create_user,
    scim_body,
)
from tests.conftest import patch_body, read_sample

SCIM_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def test_post_is_201_with_location_etag_and_meta(client: testing.TestClient) -> None:
    result = client.simulate_post(
        f"{BASE}/Users", **scim_body(read_sample("idp/okta/okta-create-user.json"))
    )
    assert result.status_code == 201
    user = result.json
    meta = user["meta"]
    assert meta["location"] == f"{PUBLIC_URL}{BASE}/Users/{user['id']}"
    assert result.headers["Location"] == meta["location"]
    assert result.headers["ETag"] == meta["version"] == 'W/"1"'
    assert meta["resourceType"] == "User"
    assert SCIM_DATETIME.fullmatch(meta["created"])
    assert meta["lastModified"] == meta["created"]
    assert user["userName"] == "test.user@okta.local"
    assert "password" not in user


def test_post_rings_the_workers_after_acknowledging(
    client: testing.TestClient, dispatcher: RecordingDispatcher
) -> None:
    create_user(client)
    assert len(dispatcher.rings) == 1


def test_a_replayed_post_returns_the_original_with_201(
    client: testing.TestClient, dispatcher: RecordingDispatcher
) -> None:
    first = create_user(client)
    result = client.simulate_post(
        f"{BASE}/Users", **scim_body(read_sample("idp/okta/okta-create-user.json"))
    )
    assert result.status_code == 201
    assert result.json["id"] == first["id"]
    assert result.headers["Location"] == first["meta"]["location"]
    assert len(dispatcher.rings) == 1  # nothing new was journaled


def test_post_honours_attributes(client: testing.TestClient) -> None:
    result = client.simulate_post(
        f"{BASE}/Users",
        query_string="attributes=userName",
        **scim_body(read_sample("idp/okta/okta-create-user.json")),
    )
    assert set(result.json) == {"schemas", "id", "userName"}


def test_get_by_id_is_200_with_etag(client: testing.TestClient) -> None:
    user = create_user(client)
    result = client.simulate_get(f"{BASE}/Users/{user['id']}")
    assert result.status_code == 200
    assert result.headers["ETag"] == 'W/"1"'
    assert result.json == user


def test_get_by_id_honours_attributes_and_excluded_attributes(client: testing.TestClient) -> None:
    user = create_user(client)
    path = f"{BASE}/Users/{user['id']}"
    only = client.simulate_get(path, query_string="attributes=userName,name.givenName").json
    assert only["userName"] == user["userName"]
    assert only["name"] == {"givenName": "Test"}
    assert "emails" not in only
    without = client.simulate_get(path, query_string="excludedAttributes=emails,meta").json
    assert "emails" not in without
    assert "meta" not in without
    assert without["userName"] == user["userName"]


def test_get_of_an_unknown_id_is_404(client: testing.TestClient) -> None:
    assert_scim_error(client.simulate_get(f"{BASE}/Users/no-such-id"), 404)


def test_a_user_is_not_found_as_a_group(client: testing.TestClient) -> None:
    user = create_user(client)
    assert_scim_error(client.simulate_get(f"{BASE}/Groups/{user['id']}"), 404)


def test_put_is_200_with_the_replaced_resource(client: testing.TestClient) -> None:
    user = create_user(client)
    user["displayName"] = "Renamed User"
    result = client.simulate_put(f"{BASE}/Users/{user['id']}", **scim_body(user))
    assert result.status_code == 200
    assert result.json["displayName"] == "Renamed User"
    assert result.json["id"] == user["id"]
    assert result.headers["ETag"] == result.json["meta"]["version"] == 'W/"2"'


def test_user_patch_is_200_with_the_user(client: testing.TestClient) -> None:
    user = create_user(client)
    result = client.simulate_patch(
        f"{BASE}/Users/{user['id']}",
        **scim_body(patch_body({"op": "replace", "path": "displayName", "value": "Patched"})),
    )
    assert result.status_code == 200
    assert result.json["displayName"] == "Patched"


def test_delete_is_204_and_the_resource_is_gone(client: testing.TestClient) -> None:
    user = create_user(client)
    path = f"{BASE}/Users/{user['id']}"
    result = client.simulate_delete(path)
    assert result.status_code == 204
    assert result.text == ""
    assert_scim_error(client.simulate_get(path), 404)
    assert_scim_error(client.simulate_delete(path), 404)


def test_matching_if_match_is_accepted(client: testing.TestClient) -> None:
    user = create_user(client)
    result = client.simulate_delete(f"{BASE}/Users/{user['id']}", headers={"If-Match": 'W/"1"'})
    assert result.status_code == 204


def test_group_post_renders_the_members_it_was_given(client: testing.TestClient) -> None:
    user = create_user(client)
    group = create_group(client, "Engineering", user["id"])
    assert [member["value"] for member in group["members"]] == [user["id"]]
    assert group["meta"]["location"] == f"{PUBLIC_URL}{BASE}/Groups/{group['id']}"


def test_group_post_and_put_render_members_as_a_get_does(
    client: testing.TestClient, sessions: sessionmaker[Session]
) -> None:
    """`type` and `$ref` (RFC 7643 §4.2) are in the write's response even when the client left
    `type` out, exactly as the GET after the workers applied it shows them."""
    ada, bob = create_user(client), create_user(client, userName="bob", externalId="bob")
    posted = create_group(client, "Engineering", ada["id"])
    team = create_group(client, "Team")
    put = client.simulate_put(f"{BASE}/Groups/{posted['id']}", **scim_body({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
        "members": [{"value": ada["id"]}, {"value": bob["id"]}, {"value": team["id"]}],
    }))
    assert put.status_code == 200, put.text
    Drainer(sessions, default_protocol()).drain()
    got = client.simulate_get(f"{BASE}/Groups/{posted['id']}").json
    assert posted["members"] == [{"value": ada["id"], "type": "User",
                                  "$ref": f"{PUBLIC_URL}{BASE}/Users/{ada['id']}"}]
    assert sorted(put.json["members"], key=_value) == sorted(got["members"], key=_value)
    assert {m["type"] for m in got["members"]} == {"User", "Group"}


def test_a_replayed_group_post_renders_members_as_the_first_answer_did(
    client: testing.TestClient,
) -> None:
    """The IdP that retries a POST gets the members' `type` and `$ref` the first 201 had."""
    ada = create_user(client)
    first = create_group(client, "Engineering", ada["id"])
    replayed = create_group(client, "Engineering", ada["id"])
    assert replayed["id"] == first["id"]
    assert replayed["members"] == first["members"] == [
        {"value": ada["id"], "type": "User", "$ref": f"{PUBLIC_URL}{BASE}/Users/{ada['id']}"}
    ]


def _value(member: dict[str, str]) -> str:
    return member["value"]


def test_group_patch_is_204(client: testing.TestClient) -> None:
    group = create_group(client, "Engineering")
    result = client.simulate_patch(
        f"{BASE}/Groups/{group['id']}",
        **scim_body(patch_body({"op": "replace", "path": "displayName", "value": "Eng"})),
    )
    assert result.status_code == 204
    assert result.text == ""
    assert result.headers["ETag"] == 'W/"2"'


@pytest.mark.parametrize("path", ["members.display", "members.value"])
def test_a_group_patch_on_a_sub_attribute_of_every_member_is_not_journaled(
    client: testing.TestClient, dispatcher: RecordingDispatcher, path: str
) -> None:
    """Without a filter it names no member, and the acknowledged state holds none: nothing
    changes, so nothing is journaled that the workers could not apply."""
    group = create_group(client, "Engineering")
    result = client.simulate_patch(
        f"{BASE}/Groups/{group['id']}", **scim_body(patch_body({"op": "remove", "path": path}))
    )
    assert result.status_code in (204, 400)
    assert len(dispatcher.rings) == 1  # the create's only
    got = client.simulate_get(f"{BASE}/Groups/{group['id']}")
    assert got.headers["ETag"] == 'W/"1"'


def test_group_patch_asking_for_attributes_is_200(client: testing.TestClient) -> None:
    group = create_group(client, "Engineering")
    result = client.simulate_patch(
        f"{BASE}/Groups/{group['id']}",
        query_string="attributes=displayName",
        **scim_body(patch_body({"op": "replace", "path": "displayName", "value": "Eng"})),
    )
    assert result.status_code == 200
    assert result.json["displayName"] == "Eng"


def test_group_get_can_exclude_members(client: testing.TestClient) -> None:
    group = create_group(client, "Engineering")
    result = client.simulate_get(
        f"{BASE}/Groups/{group['id']}", query_string="excludedAttributes=members"
    )
    assert result.status_code == 200
    assert "members" not in result.json


@pytest.mark.parametrize("path", ["/Users", "/Groups"])
def test_an_empty_list_is_a_list_response(client: testing.TestClient, path: str) -> None:
    body = client.simulate_get(BASE + path).json
    assert body == {
        "schemas": [LIST_SCHEMA],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_list_pages_with_integers(client: testing.TestClient) -> None:
    for n in range(3):
        create_user(client, userName=f"user{n}@example.test", externalId=f"ext-{n}")
    page = client.simulate_get(
        f"{BASE}/Users", query_string="startIndex=2&count=1&sortBy=userName"
    ).json
    assert page["totalResults"] == 3
    assert page["itemsPerPage"] == 1
    assert page["startIndex"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["user1@example.test"]


def test_a_count_over_the_maximum_is_served_not_refused(client: testing.TestClient) -> None:
    create_user(client)
    result = client.simulate_get(f"{BASE}/Users", query_string="count=100000")
    assert result.status_code == 200
    assert result.json["itemsPerPage"] == 1


def test_an_invalid_filter_is_400_invalid_filter(client: testing.TestClient) -> None:
    result = client.simulate_get(f"{BASE}/Users", query_string='filter=userName eq "unterminated')
    assert_scim_error(result, 400, "invalidFilter")
