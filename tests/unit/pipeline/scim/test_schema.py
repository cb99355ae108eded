"""The built-in schema documents against RFC 7643 §4.1, §4.2, §4.3 and §8.7.1 (with errata)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from scimflow.pipeline.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    Attribute,
    AttrType,
    Mutability,
    Returned,
    Schema,
    Uniqueness,
    load_builtin_schema,
)

FILES = {
    "user.json": USER_SCHEMA,
    "group.json": GROUP_SCHEMA,
    "enterprise_user.json": ENTERPRISE_USER_SCHEMA,
}

USER = load_builtin_schema("user.json")
GROUP = load_builtin_schema("group.json")
ENTERPRISE = load_builtin_schema("enterprise_user.json")

MULTI_VALUED_DEFAULT_SUBS = ("value", "display", "type", "primary")

# Every attribute RFC 7643 names, as "schema-label:attr[.sub]".
EVERY_ATTRIBUTE = [
    # §4.1.1 singular attributes
    *(
        f"user:{name}"
        for name in (
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
        )
    ),
    *(
        f"user:name.{sub}"
        for sub in (
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix",
        )
    ),
    # §4.1.2 multi-valued attributes, each with the §2.4 default sub-attributes
    *(
        f"user:{name}.{sub}"
        for name in ("emails", "phoneNumbers", "ims", "photos", "entitlements", "roles")
        for sub in MULTI_VALUED_DEFAULT_SUBS
    ),
    *(f"user:x509Certificates.{sub}" for sub in MULTI_VALUED_DEFAULT_SUBS),
    *(
        f"user:addresses.{sub}"
        for sub in (
            "formatted",
            "streetAddress",
            "locality",
            "region",
            "postalCode",
            "country",
            "type",
            "primary",
        )
    ),
    *(f"user:groups.{sub}" for sub in ("value", "$ref", "display", "type")),
    # §4.2
    "group:displayName",
    *(f"group:members.{sub}" for sub in ("value", "$ref", "type", "display")),
    # §4.3
    *(
        f"enterprise:{name}"
        for name in ("employeeNumber", "costCenter", "organization", "division", "department")
    ),
    *(f"enterprise:manager.{sub}" for sub in ("value", "$ref", "displayName")),
]

SCHEMAS = {"user": USER, "group": GROUP, "enterprise": ENTERPRISE}


def attr(path: str) -> Attribute:
    """Look up "schema-label:attr[.sub]", failing the test if any step is missing."""
    label, dotted = path.split(":")
    name, _, sub_name = dotted.partition(".")
    found = SCHEMAS[label].attribute(name)
    assert found is not None, f"{path}: no attribute {name}"
    if sub_name:
        sub = found.sub(sub_name)
        assert sub is not None, f"{path}: no sub-attribute {sub_name}"
        return sub
    return found


@pytest.mark.parametrize("path", EVERY_ATTRIBUTE)
def test_every_rfc_attribute_is_defined(path: str) -> None:
    assert attr(path).name == path.replace(":", ".").rsplit(".", maxsplit=1)[-1]


@pytest.mark.parametrize(("file_name", "urn"), FILES.items())
def test_builtin_schema_loads_with_its_urn(file_name: str, urn: str) -> None:
    schema = load_builtin_schema(file_name)
    assert schema.id == urn
    assert schema.attributes


@pytest.mark.parametrize("file_name", FILES)
def test_builtin_schema_round_trips(file_name: str) -> None:
    schema = load_builtin_schema(file_name)
    again = Schema.from_dict(schema.to_dict())
    assert again == schema
    assert again.to_dict() == schema.to_dict()


@pytest.mark.parametrize("file_name", FILES)
def test_schema_files_are_rfc7643_section7_documents(file_name: str) -> None:
    text = (resources.files("scimflow.pipeline.scim") / "schemas" / file_name).read_text("utf-8")
    doc = json.loads(text)
    assert doc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert {"id", "name", "description", "attributes"} <= doc.keys()
    for attribute in _walk(doc["attributes"]):
        assert {"name", "type", "multiValued", "description", "required"} <= attribute.keys()


def _walk(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for attribute in attributes:
        out.append(attribute)
        out.extend(_walk(attribute.get("subAttributes", [])))
    return out


def test_user_has_exactly_the_rfc_attributes() -> None:
    names = [a.name for a in USER.attributes]
    assert len(names) == 21
    # Common attributes (RFC 7643 §3.1) belong to every resource, not to the User schema.
    for common in ("id", "externalId", "meta", "schemas"):
        assert USER.attribute(common) is None


def test_attribute_lookup_is_case_insensitive() -> None:
    """RFC 7643 §2.1: attribute names are case insensitive."""
    assert USER.attribute("USERNAME") is USER.attribute("userName")
    assert attr("user:emails").sub("VALUE") is attr("user:emails.value")


def test_user_name_is_required_and_server_unique() -> None:
    user_name = attr("user:userName")
    assert user_name.required
    assert user_name.uniqueness is Uniqueness.SERVER
    assert not user_name.case_exact
    assert user_name.type is AttrType.STRING


def test_password_is_write_only_and_never_returned() -> None:
    password = attr("user:password")
    assert password.mutability is Mutability.WRITE_ONLY
    assert password.returned is Returned.NEVER


def test_groups_is_read_only_throughout() -> None:
    groups = attr("user:groups")
    assert groups.multi_valued
    assert groups.mutability is Mutability.READ_ONLY
    assert all(sub.mutability is Mutability.READ_ONLY for sub in groups.sub_attributes)
    assert attr("user:groups.type").canonical_values == ("direct", "indirect")


def test_groups_ref_points_at_groups() -> None:
    """RFC 7643 §4.1.2: "$ref" is the URI of the corresponding "Group" resource."""
    ref = attr("user:groups.$ref")
    assert ref.type is AttrType.REFERENCE
    assert ref.reference_types == ("Group",)


def test_x509_certificate_value_is_case_exact_binary() -> None:
    value = attr("user:x509Certificates.value")
    assert value.type is AttrType.BINARY
    assert value.case_exact  # RFC 7643 §2.3.6: a binary is case exact (erratum 6000)


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("user:emails.type", ("work", "home", "other")),
        ("user:phoneNumbers.type", ("work", "home", "mobile", "fax", "pager", "other")),
        ("user:ims.type", ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo", "other")),
        ("user:photos.type", ("photo", "thumbnail")),
        ("user:addresses.type", ("work", "home", "other")),
        ("user:groups.type", ("direct", "indirect")),
        ("group:members.type", ("User", "Group")),
        ("user:entitlements.type", ()),
        ("user:roles.type", ()),
        ("user:x509Certificates.type", ()),
    ],
)
def test_canonical_values(path: str, values: tuple[str, ...]) -> None:
    assert attr(path).canonical_values == values


@pytest.mark.parametrize(
    "path",
    [
        "user:emails",
        "user:phoneNumbers",
        "user:ims",
        "user:photos",
        "user:addresses",
        "user:groups",
        "user:entitlements",
        "user:roles",
        "user:x509Certificates",
        "group:members",
    ],
)
def test_multi_valued_complex_attributes(path: str) -> None:
    found = attr(path)
    assert found.multi_valued
    assert found.is_complex
    assert not found.required


@pytest.mark.parametrize("path", ["user:name", "enterprise:manager"])
def test_singular_complex_attributes(path: str) -> None:
    found = attr(path)
    assert found.is_complex
    assert not found.multi_valued


@pytest.mark.parametrize(
    ("path", "reference_types"),
    [
        ("user:profileUrl", ("external",)),
        ("user:photos.value", ("external",)),
        ("user:groups.$ref", ("Group",)),
        ("group:members.$ref", ("User", "Group")),
        ("enterprise:manager.$ref", ("User",)),
    ],
)
def test_references_are_case_exact_with_reference_types(
    path: str, reference_types: tuple[str, ...]
) -> None:
    """RFC 7643 §2.3.7: "A reference is case exact" (erratum 6001)."""
    found = attr(path)
    assert found.type is AttrType.REFERENCE
    assert found.case_exact
    assert found.reference_types == reference_types


@pytest.mark.parametrize("path", ["user:active", "user:emails.primary", "user:addresses.primary"])
def test_booleans(path: str) -> None:
    assert attr(path).type is AttrType.BOOLEAN


def test_addresses_have_primary() -> None:
    """RFC 7643 §2.4 "primary" applies to addresses too; §8.7.1 omitted it."""
    primary = attr("user:addresses.primary")
    assert primary.type is AttrType.BOOLEAN
    assert primary.mutability is Mutability.READ_WRITE


def test_group_display_name_is_required_and_unique() -> None:
    display_name = attr("group:displayName")
    assert display_name.required  # RFC 7643 §4.2 "REQUIRED"; §8.7.1 said false
    assert display_name.uniqueness is Uniqueness.SERVER  # scimflow: unique per tenant


@pytest.mark.parametrize("sub", ["value", "$ref", "type", "display"])
def test_members_sub_attributes_are_immutable(sub: str) -> None:
    """RFC 7643 §4.2: "sub-attributes of members are immutable"."""
    assert attr(f"group:members.{sub}").mutability is Mutability.IMMUTABLE


def test_members_value_is_a_case_exact_id() -> None:
    value = attr("group:members.value")
    assert value.type is AttrType.STRING
    assert value.case_exact  # it holds an "id", which is case exact (RFC 7643 §3.1)
    assert attr("group:members").mutability is Mutability.READ_WRITE


def test_manager_display_name_is_read_only() -> None:
    assert attr("enterprise:manager.displayName").mutability is Mutability.READ_ONLY
    assert attr("enterprise:manager.value").mutability is Mutability.READ_WRITE


@pytest.mark.parametrize(
    "path",
    [
        "enterprise:employeeNumber",
        "enterprise:costCenter",
        "enterprise:organization",
        "enterprise:division",
        "enterprise:department",
    ],
)
def test_enterprise_strings(path: str) -> None:
    found = attr(path)
    assert found.type is AttrType.STRING
    assert not found.multi_valued
    assert not found.required
    assert found.mutability is Mutability.READ_WRITE


def test_nothing_but_userName_and_group_displayName_is_required() -> None:
    required = [
        f"{label}:{a.name}"
        for label, schema in SCHEMAS.items()
        for a in schema.attributes
        if a.required
    ]
    assert required == ["user:userName", "group:displayName"]


def test_no_sub_attribute_is_complex() -> None:
    """RFC 7643 §2.3.8: a complex attribute MUST NOT contain complex sub-attributes."""
    for schema in SCHEMAS.values():
        for attribute in schema.attributes:
            assert all(not sub.is_complex for sub in attribute.sub_attributes)


def test_preferred_language_example_uses_a_language_tag() -> None:
    """Erratum 6007: 'en_US' is not a valid Accept-Language tag."""
    description = attr("user:preferredLanguage").description
    assert "'en-US'" in description
    assert "en_US" not in description
