"""/ServiceProviderConfig, /ResourceTypes and /Schemas (RFC 7644 §4)."""

from __future__ import annotations

from falcon import testing

from tests.api.conftest import BASE, LIST_SCHEMA, PUBLIC_URL, assert_scim_error

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_service_provider_config(client: testing.TestClient) -> None:
    config = client.simulate_get(f"{BASE}/ServiceProviderConfig").json
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 50}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert config["meta"]["location"] == f"{PUBLIC_URL}{BASE}/ServiceProviderConfig"


def test_resource_types(client: testing.TestClient) -> None:
    listed = client.simulate_get(f"{BASE}/ResourceTypes").json
    assert listed["schemas"] == [LIST_SCHEMA]
    assert {rt["name"] for rt in listed["Resources"]} == {"User", "Group"}
    user = client.simulate_get(f"{BASE}/ResourceTypes/User").json
    assert user["endpoint"] == "/Users"
    assert user["meta"]["location"] == f"{PUBLIC_URL}{BASE}/ResourceTypes/User"
    assert_scim_error(client.simulate_get(f"{BASE}/ResourceTypes/Device"), 404)


def test_schemas(client: testing.TestClient) -> None:
    listed = client.simulate_get(f"{BASE}/Schemas").json
    ids = [schema["id"] for schema in listed["Resources"]]
    assert USER_SCHEMA in ids
    assert ENTERPRISE_SCHEMA in ids
    assert listed["totalResults"] == len(ids)
    user = client.simulate_get(f"{BASE}/Schemas/{USER_SCHEMA}").json
    assert user["id"] == USER_SCHEMA
    assert any(attribute["name"] == "userName" for attribute in user["attributes"])
    assert_scim_error(client.simulate_get(f"{BASE}/Schemas/urn:example:nope"), 404)


def test_discovery_refuses_filters(client: testing.TestClient) -> None:
    result = client.simulate_get(f"{BASE}/Schemas", query_string='filter=id eq "x"')
    assert_scim_error(result, 403)


def test_discovery_requires_the_token(anonymous: testing.TestClient) -> None:
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas"):
        assert_scim_error(anonymous.simulate_get(BASE + path), 401)
