"""POST and PUT bodies into canonical resources (RFC 7643; RFC 7644 §3.3, §3.5.1).

Every RFC example body validates; the canonical form is checked attribute by attribute; each
attribute type accepts and rejects exactly what RFC 7643 §2.3 allows (plus Entra's
"True"/"False" strings); PUT keeps what a client cannot echo and refuses immutable changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidSyntax, InvalidValue, Mutability
from scimflow.pipeline.passwords.crypto import verify_password
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.scim.schema import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from tests.conftest import FAST_HASHER, canonical

Load = Callable[[str], Any]

HR_SCHEMA = "urn:example:scim:hr:1.0:User"
# A tenant extension with one attribute of every RFC 7643 §2.3 type and an immutable one.
HR_EXTENSION: dict[str, Any] = {
    "id": HR_SCHEMA,
    "name": "HR",
    "description": "Test extension with every attribute type",
    "attributes": [
        {"name": "badgeId", "type": "string", "mutability": "immutable"},
        {"name": "remote", "type": "boolean"},
        {"name": "grade", "type": "integer"},
        {"name": "fte", "type": "decimal"},
        {"name": "hiredAt", "type": "dateTime"},
        {"name": "signature", "type": "binary"},
        {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
        {"name": "nicknames", "type": "string", "multiValued": True},
        {
            "name": "desk",
            "type": "complex",
            "subAttributes": [
                {"name": "building", "type": "string"},
                {"name": "floor", "type": "integer"},
            ],
        },
    ],
}
CERTIFICATE_SAMPLE = "rfc7643/rfc7643-8.2-full-user.json"


@pytest.fixture(scope="module")
def hr_engine() -> ScimProtocol:
    registry = default_registry().with_extension("User", HR_EXTENSION)
    return ScimProtocol(registry, protect_password=FAST_HASHER)


def user(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "bjensen", **attributes}


def hr_user(**hr: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA, HR_SCHEMA], "userName": "bjensen", HR_SCHEMA: hr}


# --- RFC example bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "type_name"),
    [
        ("rfc7643/rfc7643-8.1-minimal-user.json", "User"),
        ("rfc7643/rfc7643-8.2-full-user.json", "User"),
        ("rfc7643/rfc7643-8.3-enterprise-user.json", "User"),
        ("rfc7643/rfc7643-8.4-group.json", "Group"),
        ("rfc7644/rfc7644-3.3-create-user.json", "User"),
        ("rfc7644/rfc7644-3.5.1-replace-user.json", "User"),
    ],
)
def test_rfc_example_bodies_validate_as_create(
    protocol: ScimProtocol, load_sample: Load, sample: str, type_name: str
) -> None:
    """RFC 7643 §8.1-§8.4 resources and RFC 7644 §3.3/§3.5.1 bodies are valid POST bodies."""
    body = load_sample(sample)
    command = protocol.validate_create(type_name, "new-id", body)
    resource = command.resource
    assert resource is not None
    assert command.resource_id == "new-id"
    # Read-only input (id, meta) is not part of the canonical resource (RFC 7643 §3.1).
    assert "id" not in resource
    assert "meta" not in resource
    assert "schemas" not in resource
    if type_name == "User":
        assert resource["userName"] == body["userName"]
    else:
        assert resource["displayName"] == body["displayName"]


def test_rfc7643_8_2_full_user_canonical_form(protocol: ScimProtocol, load_sample: Load) -> None:
    """RFC 7643 §8.2: every writable attribute is kept as sent; groups (readOnly) are not."""
    body = load_sample("rfc7643/rfc7643-8.2-full-user.json")
    resource = protocol.validate_create("User", "x", body).resource
    assert resource is not None
    for name in (
        "externalId",
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "emails",
        "addresses",
        "phoneNumbers",
        "ims",
        "photos",
        "userType",
        "title",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "x509Certificates",
    ):
        assert resource[name] == body[name], name
    assert "groups" not in resource
    assert resource["password"] != body["password"]
    assert set(resource) == {*body} - {"schemas", "id", "meta", "groups"}


def test_rfc7643_8_3_enterprise_extension_nested_under_urn(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """RFC 7643 §8.3: extension attributes sit under the URN; manager.displayName is readOnly."""
    body = load_sample("rfc7643/rfc7643-8.3-enterprise-user.json")
    resource = protocol.validate_create("User", "x", body).resource
    assert resource is not None
    enterprise = resource[ENTERPRISE_USER_SCHEMA]
    assert enterprise == {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {
            "value": "26118915-6090-4610-87e4-49d8ca9f808d",
            "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
        },
    }
    assert "employeeNumber" not in resource


def test_rfc7643_8_4_group_members(protocol: ScimProtocol, load_sample: Load) -> None:
    """RFC 7643 §8.4: a group keeps its members with value, $ref and display."""
    body = load_sample("rfc7643/rfc7643-8.4-group.json")
    resource = protocol.validate_create("Group", "x", body).resource
    assert resource == {"displayName": "Tour Guides", "members": body["members"]}


def test_rfc7644_3_5_1_replace_against_8_2_user(
    protocol: ScimProtocol, load_sample: Load, bjensen: dict[str, Any]
) -> None:
    """RFC 7644 §3.5.1: PUT replaces every attribute; what the body omits is gone."""
    body = load_sample("rfc7644/rfc7644-3.5.1-replace-user.json")
    command = protocol.validate_replace(
        "User", "2819c223-7f76-453a-919d-413861904646", body, bjensen
    )
    resource = command.resource
    assert resource is not None
    assert resource["userName"] == "bjensen"
    assert resource["name"]["middleName"] == "Jane"
    assert resource["emails"] == [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
    # Omitted attributes are unassigned by a replace ...
    for gone in ("addresses", "phoneNumbers", "nickName", "displayName", "active"):
        assert gone not in resource
    # ... except the write-only password, which no client can echo (RFC 7643 §7 "never").
    assert resource["password"] == bjensen["password"]
    assert "roles" not in resource  # an empty array is unassigned (RFC 7643 §2.5)


# --- canonical form ---------------------------------------------------------------------------


def test_attribute_names_are_case_insensitive_and_stored_schema_cased(
    protocol: ScimProtocol,
) -> None:
    """RFC 7643 §2.1: names are case-insensitive; the canonical form uses the schema's case."""
    body = {
        "schemas": [USER_SCHEMA],
        "USERNAME": "bjensen",
        "NAME": {"GIVENNAME": "Barbara", "familyname": "Jensen"},
        "Emails": [{"VALUE": "b@example.com", "Primary": True}],
        "externalID": "701984",
        ENTERPRISE_USER_SCHEMA.lower(): {"EMPLOYEENUMBER": "42"},
    }
    resource = protocol.validate_create("User", "x", body).resource
    assert resource == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "b@example.com", "primary": True}],
        "externalId": "701984",
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "42"},
    }


def test_same_attribute_twice_in_other_case_is_rejected(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.1: `userName` and `USERNAME` are one attribute, so giving both is invalid."""
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "x", user(USERNAME="other"))


def test_nulls_and_empty_values_are_dropped(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.5: null, [] and absent are one state, so none of them is stored."""
    body = user(
        nickName=None,
        emails=[],
        phoneNumbers=[{}],
        name={"givenName": "Barbara", "middleName": None},
        addresses=None,
        roles=[],
        **{ENTERPRISE_USER_SCHEMA: {"department": None}},
    )
    resource = protocol.validate_create("User", "x", body).resource
    assert resource == {"userName": "bjensen", "name": {"givenName": "Barbara"}}


@pytest.mark.parametrize(
    ("attributes", "ignored"),
    [
        ({"id": "client-chosen-id"}, "id"),
        ({"meta": {"resourceType": "User", "version": 'W/"1"'}}, "meta"),
        ({"groups": [{"value": "g1", "display": "Admins"}]}, "groups"),
    ],
)
def test_read_only_attributes_are_ignored(
    protocol: ScimProtocol, attributes: dict[str, Any], ignored: str
) -> None:
    """RFC 7643 §2.2 readOnly: values sent by a client are ignored, not rejected."""
    resource = protocol.validate_create("User", "x", user(**attributes)).resource
    assert resource == {"userName": "bjensen"}
    assert ignored not in resource


def test_read_only_sub_attribute_manager_display_name_is_ignored(protocol: ScimProtocol) -> None:
    """RFC 7643 §4.3: manager.displayName is readOnly, so it is dropped and value kept."""
    body = user(**{ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1", "displayName": "Boss"}}})
    body["schemas"].append(ENTERPRISE_USER_SCHEMA)
    resource = protocol.validate_create("User", "x", body).resource
    assert resource is not None
    assert resource[ENTERPRISE_USER_SCHEMA] == {"manager": {"value": "m1"}}


@pytest.mark.parametrize(
    "body",
    [
        user(favouriteColour="blue"),
        user(name={"givenName": "Barbara", "nick": "Babs"}),
        user(emails=[{"value": "b@example.com", "kind": "work"}]),
        {
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "bjensen",
            ENTERPRISE_USER_SCHEMA: {"badgeNumber": "42"},
        },
        user(**{"urn:example:unknown:1.0:User": {"badgeNumber": "42"}}),
        # An attribute of the enterprise extension is not a core attribute (RFC 7643 §3.3).
        user(department="Tour Operations"),
    ],
    ids=["top-level", "sub-attribute", "multi-valued-sub", "extension", "urn", "core-vs-ext"],
)
def test_unknown_attributes_are_rejected(protocol: ScimProtocol, body: dict[str, Any]) -> None:
    """RFC 7644 Table 9 invalidValue: an attribute the schema lacks is incompatible with it."""
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "x", body)


def test_extension_present_without_being_listed_in_schemas_is_accepted(
    protocol: ScimProtocol,
) -> None:
    """RFC 7643 §3: extension data the body carries is kept even if `schemas` omits the URN."""
    body = user(**{ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984"}})
    assert body["schemas"] == [USER_SCHEMA]
    resource = protocol.validate_create("User", "x", body).resource
    assert resource is not None
    assert resource[ENTERPRISE_USER_SCHEMA] == {"employeeNumber": "701984"}


def test_same_extension_twice_in_other_case_is_rejected(protocol: ScimProtocol) -> None:
    """URNs compare case-insensitively: two objects for one extension are refused, not merged."""
    body = user(
        **{
            ENTERPRISE_USER_SCHEMA: {"department": "Tour Operations"},
            ENTERPRISE_USER_SCHEMA.lower(): {"costCenter": "4130"},
        }
    )
    with pytest.raises(InvalidValue, match="more than once"):
        protocol.validate_create("User", "x", body)


def test_extension_listed_but_absent_stores_nothing(protocol: ScimProtocol) -> None:
    """RFC 7643 §3: listing an extension without data leaves no empty extension object."""
    body = user()
    body["schemas"].append(ENTERPRISE_USER_SCHEMA)
    assert protocol.validate_create("User", "x", body).resource == {"userName": "bjensen"}


@pytest.mark.parametrize(
    ("schemas", "error"),
    [
        (None, InvalidSyntax),
        ([], InvalidSyntax),
        (USER_SCHEMA, InvalidSyntax),
        ([ENTERPRISE_USER_SCHEMA], InvalidValue),
        ([GROUP_SCHEMA], InvalidValue),
        ([USER_SCHEMA, 42], InvalidValue),
    ],
    ids=["missing", "empty", "not-a-list", "no-core", "other-core", "not-a-urn"],
)
def test_schemas_must_list_the_core_schema(
    protocol: ScimProtocol, schemas: Any, error: type[Exception]
) -> None:
    """RFC 7643 §3: `schemas` is REQUIRED and holds the resource type's schema URNs."""
    body = user()
    if schemas is None:
        del body["schemas"]
    else:
        body["schemas"] = schemas
    with pytest.raises(error):
        protocol.validate_create("User", "x", body)


def test_core_schema_urn_as_a_key_is_the_core_attributes(protocol: ScimProtocol) -> None:
    """RFC 7644 §3.10: a core attribute may be given fully qualified by its schema URN."""
    body = {"schemas": [USER_SCHEMA], USER_SCHEMA: {"userName": "bjensen"}}
    assert protocol.validate_create("User", "x", body).resource == {"userName": "bjensen"}


def test_body_that_is_not_an_object_is_invalid_syntax(protocol: ScimProtocol) -> None:
    """RFC 7643 §3: each SCIM resource is a JSON object."""
    with pytest.raises(InvalidSyntax):
        protocol.validate_create("User", "x", [user()])


# --- passwords ----------------------------------------------------------------------------


def test_password_is_hashed_and_cleartext_never_in_the_command(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """RFC 7643 §4.1.1: the password is writeOnly; only a hash reaches the journal."""
    body = load_sample("idp/okta/okta-create-user.json")
    command = protocol.validate_create("User", "x", body)
    assert command.resource is not None
    stored = command.resource["password"]
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert verify_password("1mz050nq", stored)
    assert not verify_password("1mz050nQ", stored)
    assert "1mz050nq" not in json.dumps(command.to_json())


def test_password_is_dropped_with_the_ignore_policy(load_sample: Load) -> None:
    """Password policy `ignore` (protect_password=None): single sign-on apps store no password."""
    protocol = ScimProtocol(default_registry(), protect_password=None)
    body = load_sample("idp/okta/okta-create-user.json")
    command = protocol.validate_create("User", "x", body)
    assert command.resource is not None
    assert "password" not in command.resource
    assert "1mz050nq" not in json.dumps(command.to_json())


def test_password_must_be_a_string(protocol: ScimProtocol) -> None:
    """RFC 7643 §4.1.1: password is a string attribute."""
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "x", user(password=12345678))


# --- multi-valued attributes ---------------------------------------------------------------


def test_two_primary_values_are_rejected(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.4: the primary value "true" MUST appear no more than once."""
    emails = [
        {"value": "a@example.com", "primary": True},
        {"value": "b@example.com", "primary": "True"},  # Entra's string form counts too
    ]
    with pytest.raises(InvalidValue, match="primary"):
        protocol.validate_create("User", "x", user(emails=emails))


def test_one_primary_among_several_values_is_accepted(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.4: one primary and any number of non-primary values are fine."""
    emails = [
        {"value": "a@example.com", "primary": True},
        {"value": "b@example.com", "primary": False},
        {"value": "c@example.com"},
    ]
    resource = protocol.validate_create("User", "x", user(emails=emails)).resource
    assert resource is not None
    assert resource["emails"] == emails


def test_duplicated_members_collapse(protocol: ScimProtocol) -> None:
    """RFC 7643 §4.2: members.value is immutable, so two entries with one value are one member."""
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Admins",
        "members": [
            {"value": "u1", "display": "Babs"},
            {"value": "u2"},
            {"value": "u1", "display": "Barbara"},
            {"value": "u2"},
        ],
    }
    resource = protocol.validate_create("Group", "g", body).resource
    assert resource is not None
    assert resource["members"] == [{"value": "u1", "display": "Babs"}, {"value": "u2"}]


def test_identical_emails_collapse_but_different_ones_are_kept(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.4: a multi-valued attribute is a set of values; exact repeats collapse."""
    work = {"value": "a@example.com", "type": "work"}
    home = {"value": "a@example.com", "type": "home"}
    resource = protocol.validate_create("User", "x", user(emails=[work, home, dict(work)])).resource
    assert resource is not None
    assert resource["emails"] == [work, home]


def test_multi_valued_attribute_must_be_an_array(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.4: multi-valued attributes use the JSON array format."""
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "x", user(emails={"value": "a@example.com"}))


# --- attribute types (RFC 7643 §2.3) --------------------------------------------------------

ACCEPTED: list[tuple[str, Any, Any]] = [
    # (attribute, value sent, value stored)
    ("badgeId", "B-42", "B-42"),
    ("badgeId", "", ""),
    ("remote", True, True),
    ("remote", False, False),
    ("remote", "True", True),  # Entra default mode (E2)
    ("remote", "False", False),
    ("grade", 7, 7),
    ("grade", -3, -3),
    ("fte", 0.5, 0.5),
    ("fte", 1, 1),
    ("hiredAt", "2008-01-23T04:56:22Z", "2008-01-23T04:56:22Z"),
    ("hiredAt", "2008-01-23T04:56:22.123+01:00", "2008-01-23T04:56:22.123+01:00"),
    ("hiredAt", "2008-01-23T04:56:22", "2008-01-23T04:56:22"),
    ("signature", "aGVsbG8gd29ybGQ=", "aGVsbG8gd29ybGQ="),
    ("homepage", "https://example.com/~bjensen", "https://example.com/~bjensen"),
    ("homepage", "../Users/2819c223", "../Users/2819c223"),
    ("nicknames", ["Babs", "BJ"], ["Babs", "BJ"]),
    ("desk", {"building": "B1", "FLOOR": 3}, {"building": "B1", "floor": 3}),
]

REJECTED: list[tuple[str, Any]] = [
    ("badgeId", 42),
    ("badgeId", True),
    ("badgeId", ["B-42"]),
    ("badgeId", {"value": "B-42"}),
    ("remote", "yes"),
    ("remote", "Yes"),
    ("remote", "1"),
    ("remote", 1),
    ("remote", 0),
    ("grade", 1.5),
    ("grade", True),
    ("grade", "7"),
    ("fte", True),
    ("fte", "0.5"),
    ("fte", float("nan")),  # json.loads reads NaN/Infinity; they are no JSON numbers
    ("fte", float("inf")),
    ("hiredAt", "yesterday"),
    ("hiredAt", "2008-01-23"),  # a date is not an xsd:dateTime
    ("hiredAt", "2008-01-23 04:56:22Z"),  # xsd:dateTime needs the "T"
    ("hiredAt", "20080123T045622Z"),  # ISO 8601 basic format is not xsd:dateTime
    ("hiredAt", "2008-02-30T04:56:22Z"),
    ("hiredAt", 1201064182),
    ("signature", "not base64!"),
    ("signature", 42),
    ("homepage", 42),
    ("homepage", {"value": "https://example.com"}),
    ("nicknames", "Babs"),
    ("nicknames", [1, 2]),
    ("desk", "B1"),
    ("desk", {"building": "B1", "room": "12"}),
    ("desk", {"floor": "3"}),
]


@pytest.mark.parametrize(("name", "sent", "stored"), ACCEPTED)
def test_attribute_type_accepts(hr_engine: ScimProtocol, name: str, sent: Any, stored: Any) -> None:
    """RFC 7643 §2.3: each data type accepts its JSON form and stores it canonically."""
    resource = hr_engine.validate_create("User", "x", hr_user(**{name: sent})).resource
    assert resource is not None
    assert resource[HR_SCHEMA] == {name: stored}
    assert type(resource[HR_SCHEMA][name]) is type(stored)


@pytest.mark.parametrize(("name", "sent"), REJECTED)
def test_attribute_type_rejects(hr_engine: ScimProtocol, name: str, sent: Any) -> None:
    """RFC 7643 §2.3: a value of another JSON type or lexical form is invalidValue."""
    with pytest.raises(InvalidValue):
        hr_engine.validate_create("User", "x", hr_user(**{name: sent}))


def test_binary_accepts_the_rfc_certificate(protocol: ScimProtocol, load_sample: Load) -> None:
    """RFC 7643 §2.3.6 binary: the §8.2 x509Certificates value is valid base64."""
    body = load_sample(CERTIFICATE_SAMPLE)
    resource = protocol.validate_create("User", "x", body).resource
    assert resource is not None
    assert resource["x509Certificates"] == body["x509Certificates"]


@pytest.mark.parametrize("active", ["yes", "Yes", "no", "on", 1, 0, "1", "t"])
def test_core_boolean_tolerance_is_narrow(protocol: ScimProtocol, active: Any) -> None:
    """RFC 7643 §2.3.2: only true/false (and Entra's "True"/"False" strings) are booleans."""
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "x", user(active=active))


# --- required attributes --------------------------------------------------------------------


@pytest.mark.parametrize("user_name", [None, "", "absent"])
def test_user_name_is_required(protocol: ScimProtocol, user_name: Any) -> None:
    """RFC 7643 §4.1.1: each User MUST include a non-empty userName."""
    body = user()
    if user_name == "absent":
        del body["userName"]
    else:
        body["userName"] = user_name
    with pytest.raises(InvalidValue, match="userName"):
        protocol.validate_create("User", "x", body)


@pytest.mark.parametrize("display_name", [None, "", "absent"])
def test_group_display_name_is_required(protocol: ScimProtocol, display_name: Any) -> None:
    """RFC 7643 §4.2: a Group's displayName is REQUIRED."""
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "members": [{"value": "u1"}]}
    if display_name != "absent":
        body["displayName"] = display_name
    with pytest.raises(InvalidValue, match="displayName"):
        protocol.validate_create("Group", "g", body)


def test_required_extension_must_be_present() -> None:
    """RFC 7643 §6 schemaExtensions.required: a required extension must carry values."""
    registry = default_registry().with_extension("User", HR_EXTENSION, required=True)
    protocol = ScimProtocol(registry)
    with pytest.raises(InvalidValue, match=HR_SCHEMA):
        protocol.validate_create("User", "x", user())
    assert protocol.validate_create("User", "x", hr_user(grade=1)).resource is not None


# --- PUT (RFC 7644 §3.5.1) -------------------------------------------------------------------


def test_put_without_password_keeps_the_stored_hash(
    protocol: ScimProtocol, bjensen: dict[str, Any]
) -> None:
    """RFC 7644 §3.5.1 + RFC 7643 §7: a password is never returned, so PUT cannot echo it."""
    resource = protocol.validate_replace("User", "x", user(), bjensen).resource
    assert resource == {"userName": "bjensen", "password": bjensen["password"]}
    assert verify_password("t1meMa$heen", resource["password"])


def test_put_with_password_stores_a_new_hash(
    protocol: ScimProtocol, bjensen: dict[str, Any]
) -> None:
    """RFC 7644 §3.5.1: a password in the PUT body replaces the stored one, hashed."""
    resource = protocol.validate_replace("User", "x", user(password="n3wSecret"), bjensen).resource
    assert resource is not None
    assert resource["password"] != bjensen["password"]
    assert verify_password("n3wSecret", resource["password"])
    assert not verify_password("t1meMa$heen", resource["password"])


def test_put_must_not_change_an_immutable_value(hr_engine: ScimProtocol) -> None:
    """RFC 7644 §3.5.1 immutable: a different value is 400 mutability."""
    current = hr_engine.validate_create("User", "x", hr_user(badgeId="B-1")).resource
    assert current is not None
    with pytest.raises(Mutability) as raised:
        hr_engine.validate_replace("User", "x", hr_user(badgeId="B-2"), current)
    assert raised.value.status == 400
    assert raised.value.scim_type == "mutability"


def test_put_may_repeat_or_omit_an_immutable_value(hr_engine: ScimProtocol) -> None:
    """RFC 7644 §3.5.1 immutable: the same value is accepted; an omitted one is kept."""
    current = hr_engine.validate_create("User", "x", hr_user(badgeId="B-1", grade=1)).resource
    assert current is not None
    same = hr_engine.validate_replace("User", "x", hr_user(badgeId="B-1", grade=2), current)
    assert same.resource is not None
    assert same.resource[HR_SCHEMA] == {"badgeId": "B-1", "grade": 2}
    omitted = hr_engine.validate_replace("User", "x", hr_user(grade=3), current)
    assert omitted.resource is not None
    assert omitted.resource[HR_SCHEMA] == {"badgeId": "B-1", "grade": 3}


def test_put_may_set_an_immutable_value_not_yet_set(hr_engine: ScimProtocol) -> None:
    """RFC 7643 §2.2 immutable: a value "may be defined at resource creation or replacement"."""
    current = hr_engine.validate_create("User", "x", hr_user(grade=1)).resource
    assert current is not None
    resource = hr_engine.validate_replace("User", "x", hr_user(badgeId="B-9"), current).resource
    assert resource is not None
    assert resource[HR_SCHEMA] == {"badgeId": "B-9"}


def test_okta_full_object_put_echoing_read_only_attributes_is_accepted(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """Okta O1 "Update the User": the whole object comes back with id, meta and groups."""
    current = canonical(protocol, "User", "idp/okta/okta-create-user.json")
    body = load_sample("idp/okta/okta-put-user-full-object.json")
    command = protocol.validate_replace("User", body["id"], body, current)
    resource = command.resource
    assert resource is not None
    assert resource["name"] == {
        "givenName": "Another",
        "middleName": "Excited",
        "familyName": "User",
    }
    assert resource["emails"] == body["emails"]
    assert resource["active"] is True
    assert resource["password"] == current["password"]  # not echoed, so kept
    for read_only in ("id", "meta", "groups"):
        assert read_only not in resource
    # Okta's PUT omits what it does not map: those attributes are unassigned by the replace.
    assert "externalId" not in resource
    assert "locale" not in resource


def test_put_validates_like_post(protocol: ScimProtocol, bjensen: dict[str, Any]) -> None:
    """RFC 7644 §3.5.1: the replacement must itself be a valid resource (userName required)."""
    body = {"schemas": [USER_SCHEMA], "displayName": "Babs"}
    with pytest.raises(InvalidValue, match="userName"):
        protocol.validate_replace("User", "x", body, bjensen)
