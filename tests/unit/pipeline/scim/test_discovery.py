"""Discovery documents (RFC 7644 §4; RFC 7643 §5, §6, §7) generated from the registry."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.scim.discovery import (
    LIST_RESPONSE_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
    Capabilities,
    resource_type_doc,
    resource_types_list,
    schema_doc,
    schemas_list,
    service_provider_config,
)
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    SCHEMA_SCHEMA,
    USER_SCHEMA,
    Schema,
)

BASE = "https://scim.example.com/scim/v2/t/acme"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
CUSTOM_URN = "urn:example:scim:hr:1.0:User"
CUSTOM = {
    "id": CUSTOM_URN,
    "name": "HrUser",
    "description": "Acme HR attributes",
    "attributes": [{"name": "badgeNumber", "type": "string", "uniqueness": "server"}],
}


def assert_absolute(location: str) -> None:
    parts = urlsplit(location)
    assert parts.scheme == "https"
    assert parts.netloc == "scim.example.com"
    assert location.startswith(BASE + "/")


def assert_list_response(doc: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """RFC 7644 §3.4.2: a ListResponse with integer counters and "Resources"."""
    assert doc["schemas"] == [LIST_RESPONSE_SCHEMA]
    for key in ("totalResults", "itemsPerPage", "startIndex"):
        assert type(doc[key]) is int, key
    assert doc["totalResults"] == count
    assert doc["itemsPerPage"] == count
    assert doc["startIndex"] == 1
    resources: list[dict[str, Any]] = doc["Resources"]
    assert len(resources) == count
    json.dumps(doc)  # the whole document is plain JSON
    return resources


# --- /ServiceProviderConfig ------------------------------------------------------------------


def test_service_provider_config_defaults() -> None:
    doc = service_provider_config(Capabilities(), BASE)
    assert doc["schemas"] == [SERVICE_PROVIDER_CONFIG_SCHEMA]
    assert doc["patch"] == {"supported": True}
    assert doc["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
    assert doc["filter"] == {"supported": True, "maxResults": 1000}
    assert doc["changePassword"] == {"supported": True}
    assert doc["sort"] == {"supported": True}
    assert doc["etag"] == {"supported": True}
    assert "documentationUri" not in doc
    json.dumps(doc)


def test_service_provider_config_meta() -> None:
    meta = service_provider_config(Capabilities(), BASE)["meta"]
    assert meta == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }
    assert_absolute(meta["location"])


def test_service_provider_config_advertises_bearer_tokens_only() -> None:
    schemes = service_provider_config(Capabilities(), BASE)["authenticationSchemes"]
    assert len(schemes) == 1
    scheme = schemes[0]
    assert scheme["type"] == "oauthbearertoken"
    assert scheme["primary"] is True
    assert scheme["name"]
    assert scheme["description"]
    assert scheme["specUri"].endswith("rfc6750")


def test_service_provider_config_reflects_capabilities() -> None:
    caps = Capabilities(
        patch=False,
        bulk=True,
        bulk_max_operations=100,
        bulk_max_payload_size=1_048_576,
        filter=False,
        filter_max_results=0,
        change_password=False,
        sort=False,
        etag=False,
        documentation_uri="https://docs.example.com/scim",
    )
    doc = service_provider_config(caps, BASE)
    assert doc["patch"] == {"supported": False}
    assert doc["bulk"] == {"supported": True, "maxOperations": 100, "maxPayloadSize": 1_048_576}
    assert doc["filter"] == {"supported": False, "maxResults": 0}
    assert doc["changePassword"] == {"supported": False}
    assert doc["sort"] == {"supported": False}
    assert doc["etag"] == {"supported": False}
    assert doc["documentationUri"] == "https://docs.example.com/scim"
    assert doc["authenticationSchemes"][0]["documentationUri"] == "https://docs.example.com/scim"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bulk": True},
        {"bulk": True, "bulk_max_operations": 10},
        {"bulk": True, "bulk_max_payload_size": 1024},
        {"filter_max_results": 0},
        {"filter_max_results": -1},
        {"bulk_max_operations": -5},
    ],
)
def test_inconsistent_capabilities_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Capabilities(**kwargs)


# --- /ResourceTypes ---------------------------------------------------------------------------


def test_resource_types_list() -> None:
    resources = assert_list_response(resource_types_list(default_registry(), BASE), 2)
    assert [r["name"] for r in resources] == ["User", "Group"]
    for resource in resources:
        assert resource["schemas"] == [RESOURCE_TYPE_SCHEMA]
        assert resource["meta"]["resourceType"] == "ResourceType"
        assert resource["meta"]["location"] == f"{BASE}/ResourceTypes/{resource['name']}"
        assert_absolute(resource["meta"]["location"])


def test_user_resource_type_doc() -> None:
    doc = resource_type_doc(default_registry(), "User", BASE)
    assert doc["id"] == "User"
    assert doc["endpoint"] == "/Users"
    assert doc["schema"] == USER_SCHEMA
    assert doc["schemaExtensions"] == [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}]
    assert doc["meta"]["location"] == f"{BASE}/ResourceTypes/User"


def test_group_resource_type_doc() -> None:
    doc = resource_type_doc(default_registry(), "Group", BASE)
    assert doc["endpoint"] == "/Groups"
    assert doc["schema"] == GROUP_SCHEMA
    assert doc["schemaExtensions"] == []


def test_unknown_resource_type_doc_is_not_found() -> None:
    with pytest.raises(NotFound):
        resource_type_doc(default_registry(), "Device", BASE)


# --- /Schemas -----------------------------------------------------------------------------


def test_schemas_list() -> None:
    resources = assert_list_response(schemas_list(default_registry(), BASE), 3)
    assert [r["id"] for r in resources] == [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]
    for resource in resources:
        assert resource["schemas"] == [SCHEMA_SCHEMA]
        assert resource["meta"]["resourceType"] == "Schema"
        assert resource["meta"]["location"] == f"{BASE}/Schemas/{resource['id']}"
        assert_absolute(resource["meta"]["location"])


def test_schema_doc_round_trips() -> None:
    doc = schema_doc(default_registry(), GROUP_SCHEMA, BASE)
    assert doc["meta"]["location"] == f"{BASE}/Schemas/{GROUP_SCHEMA}"
    assert Schema.from_dict(doc) == default_registry().schema(GROUP_SCHEMA)


def test_schema_doc_never_leaks_common_attributes() -> None:
    """RFC 7643 §3.1: id, externalId and meta are not part of a schema's attributes."""
    doc = schema_doc(default_registry(), USER_SCHEMA, BASE)
    names = {attribute["name"] for attribute in doc["attributes"]}
    assert not names & {"id", "externalId", "meta"}


def test_unknown_schema_doc_is_not_found() -> None:
    with pytest.raises(NotFound):
        schema_doc(default_registry(), "urn:example:nothing", BASE)


# --- Tenant extensions are advertised where they are enforced -------------------------------


def test_custom_extension_is_advertised() -> None:
    registry = default_registry().with_extension("User", CUSTOM, required=True)

    user = resource_type_doc(registry, "User", BASE)
    assert user["schemaExtensions"] == [
        {"schema": ENTERPRISE_USER_SCHEMA, "required": False},
        {"schema": CUSTOM_URN, "required": True},
    ]
    listed = assert_list_response(schemas_list(registry, BASE), 4)
    assert listed[-1]["id"] == CUSTOM_URN
    single = schema_doc(registry, CUSTOM_URN, BASE)
    assert single["meta"]["location"] == f"{BASE}/Schemas/{CUSTOM_URN}"
    assert [a["name"] for a in single["attributes"]] == ["badgeNumber"]
    assert single["attributes"][0]["uniqueness"] == "server"
    # The shared default registry does not advertise it.
    assert_list_response(schemas_list(default_registry(), BASE), 3)


# --- base_url handling ----------------------------------------------------------------------


def test_trailing_slash_in_base_url_is_ignored() -> None:
    doc = resource_type_doc(default_registry(), "User", BASE + "/")
    assert doc["meta"]["location"] == f"{BASE}/ResourceTypes/User"


@pytest.mark.parametrize("base_url", ["/scim/v2", "scim.example.com/scim", "ftp://x/scim", ""])
def test_relative_base_url_is_a_programming_error(base_url: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        schemas_list(default_registry(), base_url)
