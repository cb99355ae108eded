"""Rendering canonical resources as SCIM JSON (RFC 7643 §3, RFC 7644 §3.4.2, §3.9)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.render import (
    LIST_RESPONSE_SCHEMA,
    Meta,
    Projection,
    list_response,
    render_resource,
)
from scimflow.pipeline.scim.schema import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from tests.conftest import canonical

Load = Callable[[str], Any]
Resource = dict[str, Any]

USER_ID = "2819c223-7f76-453a-919d-413861904646"
GROUP_ID = "e9e30dba-f08f-4109-8486-d5c6a331660a"
USER_META = Meta(
    resource_type="User",
    created="2010-01-23T04:56:22Z",
    last_modified="2011-05-13T04:42:34Z",
    location=f"https://example.com/v2/Users/{USER_ID}",
    version=3,
)
GROUP_META = Meta(
    resource_type="Group",
    created="2010-01-23T04:56:22Z",
    last_modified="2011-05-13T04:42:34Z",
    location=f"https://example.com/v2/Groups/{GROUP_ID}",
    version=7,
)


@pytest.fixture
def enterprise_user(protocol: ScimProtocol) -> Resource:
    """The canonical RFC 7643 §8.3 user: core, enterprise extension and a password hash."""
    return canonical(protocol, "User", "rfc7643/rfc7643-8.3-enterprise-user.json")


def render_user(
    protocol: ScimProtocol,
    resource: Resource,
    attributes: str | None = None,
    excluded: str | None = None,
) -> dict[str, Any]:
    user_type = protocol.resource_type("User")
    projection = Projection.parse(user_type, attributes, excluded)
    return render_resource(
        resource, user_type, resource_id=USER_ID, meta=USER_META, projection=projection
    )


def render_group(
    protocol: ScimProtocol,
    resource: Resource,
    attributes: str | None = None,
    excluded: str | None = None,
) -> dict[str, Any]:
    group_type = protocol.resource_type("Group")
    projection = Projection.parse(group_type, attributes, excluded)
    return render_resource(
        resource, group_type, resource_id=GROUP_ID, meta=GROUP_META, projection=projection
    )


# --- meta, id, schemas ----------------------------------------------------------------------


def test_meta_is_rendered_with_a_weak_etag_version(
    protocol: ScimProtocol, bjensen: Resource
) -> None:
    """RFC 7643 §3.1 meta; RFC 7644 §3.14: version is the resource's weak ETag W/"n"."""
    out = render_user(protocol, bjensen)
    assert out["meta"] == {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "location": f"https://example.com/v2/Users/{USER_ID}",
        "version": 'W/"3"',
    }
    assert USER_META.etag == 'W/"3"'


def test_id_is_the_resource_id(protocol: ScimProtocol, bjensen: Resource) -> None:
    """RFC 7643 §3.1: `id` is issued by the service provider, not taken from the body."""
    assert render_user(protocol, bjensen)["id"] == USER_ID


def test_schemas_lists_only_the_core_schema_without_extension_data(
    protocol: ScimProtocol, bjensen: Resource
) -> None:
    """RFC 7643 §3: `schemas` names the schemas the representation uses; §8.2 has no extension."""
    assert render_user(protocol, bjensen)["schemas"] == [USER_SCHEMA]


def test_schemas_lists_an_extension_present_in_the_resource(
    protocol: ScimProtocol, enterprise_user: Resource
) -> None:
    """RFC 7643 §3, §8.3: an extension with values is listed in `schemas` and nested by URN."""
    out = render_user(protocol, enterprise_user)
    assert out["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
    assert out[ENTERPRISE_USER_SCHEMA]["employeeNumber"] == "701984"
    assert out[ENTERPRISE_USER_SCHEMA]["manager"] == {
        "value": "26118915-6090-4610-87e4-49d8ca9f808d",
        "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
    }


def test_rendering_the_rfc_8_3_user_round_trips(
    protocol: ScimProtocol, load_sample: Load, enterprise_user: Resource
) -> None:
    """RFC 7643 §8.3: the rendered user equals the RFC's, less password, groups, computed data."""
    expected = load_sample("rfc7643/rfc7643-8.3-enterprise-user.json")
    del expected["password"], expected["groups"], expected["meta"]
    del expected[ENTERPRISE_USER_SCHEMA]["manager"]["displayName"]
    out = render_user(protocol, enterprise_user)
    del out["meta"]
    assert out == expected


def test_group_renders_members(protocol: ScimProtocol, tour_guides: Resource) -> None:
    """RFC 7643 §8.4: a group renders displayName and members, schemas and meta."""
    out = render_group(protocol, tour_guides)
    assert out["schemas"] == [GROUP_SCHEMA]
    assert out["id"] == GROUP_ID
    assert out["displayName"] == "Tour Guides"
    assert [m["value"] for m in out["members"]] == [
        "2819c223-7f76-453a-919d-413861904646",
        "902c246b-6245-4190-8e05-00816be7344a",
    ]
    assert out["meta"]["version"] == 'W/"7"'


# --- returned characteristic ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "excluded"),
    [(None, None), ("password", None), ("userName,password", None), (None, "userName")],
)
def test_password_is_never_rendered(
    protocol: ScimProtocol, bjensen: Resource, attributes: str | None, excluded: str | None
) -> None:
    """RFC 7643 §4.1.1: password has returned "never", even when asked for by name."""
    assert "password" in bjensen
    out = render_user(protocol, bjensen, attributes, excluded)
    assert "password" not in out
    assert bjensen["password"] not in json.dumps(out)


# --- attributes / excludedAttributes (RFC 7644 §3.9) -----------------------------------------


def test_attributes_user_name_returns_id_user_name_and_schemas(
    protocol: ScimProtocol, bjensen: Resource
) -> None:
    """RFC 7644 §3.9: `attributes` replaces the default set; `id` is returned "always"."""
    out = render_user(protocol, bjensen, attributes="userName")
    assert out == {"schemas": [USER_SCHEMA], "id": USER_ID, "userName": "bjensen@example.com"}


def test_attribute_names_in_projection_are_case_insensitive(
    protocol: ScimProtocol, bjensen: Resource
) -> None:
    """RFC 7643 §2.1: `attributes=USERNAME` selects userName."""
    out = render_user(protocol, bjensen, attributes="USERNAME")
    assert out == {"schemas": [USER_SCHEMA], "id": USER_ID, "userName": "bjensen@example.com"}


def test_attributes_accepts_several_names_and_sub_attributes(
    protocol: ScimProtocol, bjensen: Resource
) -> None:
    """RFC 7644 §3.9: a comma-separated list; `name.givenName` selects one sub-attribute."""
    out = render_user(protocol, bjensen, attributes="name.givenName, emails.value,displayName")
    assert out == {
        "schemas": [USER_SCHEMA],
        "id": USER_ID,
        "name": {"givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}],
    }


def test_excluded_attributes_members_on_group(
    protocol: ScimProtocol, tour_guides: Resource
) -> None:
    """E1 "Get Group": `excludedAttributes=members` leaves the rest of the group."""
    out = render_group(protocol, tour_guides, excluded="members")
    assert "members" not in out
    assert out["displayName"] == "Tour Guides"
    assert out["id"] == GROUP_ID
    assert out["schemas"] == [GROUP_SCHEMA]
    assert "meta" in out


@pytest.mark.parametrize("excluded", ["id", "ID", "id,members", f"{GROUP_SCHEMA}:id"])
def test_excluded_attributes_cannot_drop_id(
    protocol: ScimProtocol, tour_guides: Resource, excluded: str
) -> None:
    """RFC 7643 §3.1 / RFC 7644 §3.9: `id` is returned "always", excludedAttributes or not."""
    out = render_group(protocol, tour_guides, excluded=excluded)
    assert out["id"] == GROUP_ID


def test_excluded_sub_attribute_keeps_the_others(protocol: ScimProtocol, bjensen: Resource) -> None:
    """RFC 7644 §3.9: excluding `name.middleName` keeps the rest of `name`."""
    out = render_user(protocol, bjensen, excluded="name.middleName")
    assert "middleName" not in out["name"]
    assert out["name"]["givenName"] == "Barbara"
    assert out["userName"] == "bjensen@example.com"


def test_projection_of_an_extension_attribute(
    protocol: ScimProtocol, enterprise_user: Resource
) -> None:
    """RFC 7644 §3.10: an extension attribute is selected by its URN-qualified name."""
    out = render_user(protocol, enterprise_user, attributes=f"{ENTERPRISE_USER_SCHEMA}:department")
    assert out == {
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": USER_ID,
        ENTERPRISE_USER_SCHEMA: {"department": "Tour Operations"},
    }


def test_excluding_an_extension_attribute(
    protocol: ScimProtocol, enterprise_user: Resource
) -> None:
    """RFC 7644 §3.9: `excludedAttributes=<urn>:manager` drops only that extension attribute."""
    out = render_user(protocol, enterprise_user, excluded=f"{ENTERPRISE_USER_SCHEMA}:manager")
    assert "manager" not in out[ENTERPRISE_USER_SCHEMA]
    assert out[ENTERPRISE_USER_SCHEMA]["employeeNumber"] == "701984"


def test_meta_sub_attribute_projection(protocol: ScimProtocol, bjensen: Resource) -> None:
    """RFC 7644 §3.9/§3.10: `meta.lastModified` selects, `meta.version` excludes, one sub-attr."""
    only = render_user(protocol, bjensen, attributes="meta.lastModified")
    assert only == {
        "schemas": [USER_SCHEMA],
        "id": USER_ID,
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
    }
    without = render_user(protocol, bjensen, excluded="meta.version")
    assert "version" not in without["meta"]
    assert without["meta"]["location"] == USER_META.location


def test_unknown_names_in_a_projection_select_nothing(
    protocol: ScimProtocol, bjensen: Resource
) -> None:
    """RFC 7644 §3.9: a name the schema lacks neither fails nor selects anything."""
    out = render_user(protocol, bjensen, attributes="favouriteColour")
    assert out == {"schemas": [USER_SCHEMA], "id": USER_ID}
    assert render_user(protocol, bjensen, excluded="favouriteColour") == render_user(
        protocol, bjensen
    )


# --- ListResponse (RFC 7644 §3.4.2) ----------------------------------------------------------


def test_list_response_numbers_are_integers(protocol: ScimProtocol, bjensen: Resource) -> None:
    """RFC 7644 §3.4.2; O1: totalResults, itemsPerPage and startIndex are JSON integers."""
    page = [render_user(protocol, bjensen, attributes="userName")]
    out = list_response(page, total_results=250, start_index=101)
    assert out == {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": 250,
        "itemsPerPage": 1,
        "startIndex": 101,
        "Resources": page,
    }
    for key in ("totalResults", "itemsPerPage", "startIndex"):
        assert type(out[key]) is int
    assert '"totalResults": 250' in json.dumps(out)


def test_empty_list_response() -> None:
    """O1/E1: a look-up that matches nothing is 200 with totalResults 0, not 404."""
    out = list_response(iter(()), total_results=0, start_index=1)
    assert out["totalResults"] == 0
    assert out["itemsPerPage"] == 0
    assert out["startIndex"] == 1
    assert out["Resources"] == []
    assert out["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
