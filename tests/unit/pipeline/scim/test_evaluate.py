"""Schema resolution, filter checking and in-memory evaluation (RFC 7644 §3.4.2.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidFilter, ScimError
from scimflow.pipeline.scim.evaluate import (
    SCHEMAS_ATTRIBUTE,
    check_filter,
    check_value_filter,
    matches,
    resolve,
    value_matches,
)
from scimflow.pipeline.scim.filters import And, Compare, Or, Present, ValuePath, parse_filter
from scimflow.pipeline.scim.paths import AttrPath
from scimflow.pipeline.scim.schema import (
    COMMON_BY_LOWER_NAME,
    AttrType,
    Extension,
    ResourceType,
    Schema,
    load_builtin_schema,
)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
TEST_EXT = "urn:example:params:scim:schemas:extension:test:2.0:User"

# A tenant extension with the attribute types the core User schema lacks.
TEST_EXTENSION = Schema.from_dict(
    {
        "id": TEST_EXT,
        "name": "Test",
        "attributes": [
            {"name": "level", "type": "integer"},
            {"name": "score", "type": "decimal"},
            {"name": "hiredAt", "type": "dateTime"},
            {"name": "badge", "type": "binary", "caseExact": True},
            {"name": "tags", "type": "string", "multiValued": True},
            {"name": "code", "type": "string", "caseExact": True},
            {"name": "vip", "type": "boolean"},
        ],
    }
)
USER_TYPE = ResourceType(
    "User",
    "/Users",
    "User Account",
    load_builtin_schema("user.json"),
    (Extension(load_builtin_schema("enterprise_user.json")), Extension(TEST_EXTENSION)),
)
GROUP_TYPE = ResourceType("Group", "/Groups", "Group", load_builtin_schema("group.json"))


def bjensen() -> dict[str, Any]:
    """RFC 7643 §8.3 enterprise user, plus values for the test extension."""
    text = (SAMPLES / "rfc7643" / "rfc7643-8.3-enterprise-user.json").read_text("utf-8")
    user: dict[str, Any] = json.loads(text)
    user[TEST_EXT] = {
        "level": 7,
        "score": 3.5,
        "hiredAt": "2010-01-23T04:56:22+02:00",
        "badge": "QUJD",
        "tags": ["alpha", "Beta"],
        "code": "AbC",
        "vip": False,
    }
    return user


def john() -> dict[str, Any]:
    """A second user to make the negated RFC examples match."""
    return {
        "schemas": [CORE],
        "id": "u2",
        "userName": "john",
        "userType": "Intern",
        "emails": [{"value": "john@other.net", "type": "home"}],
        "meta": {"lastModified": "2012-01-01T00:00:00Z"},
    }


def user_matches(text: str, resource: dict[str, Any] | None = None) -> bool:
    parsed = parse_filter(text)
    check_filter(parsed, USER_TYPE)
    return matches(parsed, bjensen() if resource is None else resource, USER_TYPE)


# --- resolve ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "attr_type"),
    [
        (AttrPath(None, "userName", None), "userName", AttrType.STRING),
        (AttrPath(None, "USERNAME", None), "userName", AttrType.STRING),
        (AttrPath(None, "name", "givenName"), "givenName", AttrType.STRING),
        (AttrPath(None, "Name", "GIVENNAME"), "givenName", AttrType.STRING),
        (AttrPath(None, "emails", None), "emails", AttrType.COMPLEX),
        (AttrPath(None, "emails", "primary"), "primary", AttrType.BOOLEAN),
        (AttrPath(None, "groups", "$ref"), "$ref", AttrType.REFERENCE),
        (AttrPath(None, "id", None), "id", AttrType.STRING),
        (AttrPath(None, "externalId", None), "externalId", AttrType.STRING),
        (AttrPath(None, "meta", "lastModified"), "lastModified", AttrType.DATETIME),
        (AttrPath(None, "schemas", None), "schemas", AttrType.REFERENCE),
        (AttrPath(CORE, "userName", None), "userName", AttrType.STRING),
        (AttrPath(CORE.upper(), "name", "familyName"), "familyName", AttrType.STRING),
        (AttrPath(CORE, "meta", "created"), "created", AttrType.DATETIME),
        (AttrPath(ENTERPRISE, "employeeNumber", None), "employeeNumber", AttrType.STRING),
        (AttrPath(ENTERPRISE.lower(), "manager", "value"), "value", AttrType.STRING),
        (AttrPath(TEST_EXT, "level", None), "level", AttrType.INTEGER),
    ],
)
def test_resolve(path: AttrPath, name: str, attr_type: AttrType) -> None:
    attr = resolve(path, USER_TYPE)
    assert attr is not None
    assert (attr.name, attr.type) == (name, attr_type)


def test_resolve_common_attributes_are_the_schema_modules() -> None:
    assert resolve(AttrPath(None, "meta", None), USER_TYPE) is COMMON_BY_LOWER_NAME["meta"]
    assert resolve(AttrPath(None, "schemas", None), GROUP_TYPE) is SCHEMAS_ATTRIBUTE


@pytest.mark.parametrize(
    "path",
    [
        AttrPath(None, "nope", None),
        AttrPath(None, "name", "nope"),
        AttrPath(None, "userName", "sub"),
        AttrPath(None, "employeeNumber", None),  # extension attributes need their URN
        AttrPath(ENTERPRISE, "userName", None),
        AttrPath(ENTERPRISE, "id", None),
        AttrPath("urn:unknown:schema", "userName", None),
        AttrPath(ENTERPRISE, "", None),  # the whole extension is a schema, not an attribute
        AttrPath(None, "members", None),
    ],
)
def test_resolve_unknown(path: AttrPath) -> None:
    assert resolve(path, USER_TYPE) is None


def test_resolve_relative_to_a_parent() -> None:
    emails = resolve(AttrPath(None, "emails", None), USER_TYPE)
    assert emails is not None
    value = resolve(AttrPath(None, "VALUE", None), USER_TYPE, parent=emails)
    assert value is not None and value.name == "value"
    assert resolve(AttrPath(CORE, "value", None), USER_TYPE, parent=emails) is None
    assert resolve(AttrPath(None, "userName", None), USER_TYPE, parent=emails) is None


def test_resolve_group_members() -> None:
    ref = resolve(AttrPath(None, "members", "$ref"), GROUP_TYPE)
    assert ref is not None and ref.type is AttrType.REFERENCE


# --- RFC 7644 §3.4.2.2 examples, evaluated ---------------------------------------------------

RFC_EXAMPLES: list[tuple[str, bool, bool]] = [
    # (filter, matches bjensen, matches john)
    ('userName Eq "john"', False, True),
    ('userName eq "bjensen"', False, False),
    ('userName eq "BJensen@Example.com"', True, False),
    ('name.familyName co "O\'Malley"', False, False),
    ('name.familyName co "ENS"', True, False),
    ('userName sw "J"', False, True),
    ('userName sw "b"', True, False),
    (f'{CORE}:userName sw "J"', False, True),
    ("title pr", True, False),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False, True),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True, True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False, False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True, False),
    ('title pr and userType eq "Employee"', True, False),
    ('title pr or userType eq "Intern"', True, True),
    (f'schemas eq "{ENTERPRISE}"', True, False),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        True,
        False,
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
        True,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True, False),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True, False),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        True,
        False,
    ),
]


@pytest.mark.parametrize(("text", "for_bjensen", "for_john"), RFC_EXAMPLES)
def test_rfc_examples_evaluate(text: str, for_bjensen: bool, for_john: bool) -> None:
    assert user_matches(text, bjensen()) is for_bjensen
    assert user_matches(text, john()) is for_john


# --- Semantics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Entra ID's filtered value path followed by a sub-attribute comparison.
        ('emails[type eq "work"].value eq "bjensen@example.com"', True),
        ('emails[type eq "home"].value eq "bjensen@example.com"', False),
        ('emails[type eq "work"].value ne "bjensen@example.com"', False),
        ('emails[type eq "home"].primary pr', False),
        ('emails[type eq "work"].primary eq true', True),
        # caseExact: id and externalId are case-sensitive, userName is not (RFC 7643 §3.1, §4.1.1).
        ('id eq "2819C223-7F76-453A-919D-413861904646"', False),
        ('id eq "2819c223-7f76-453a-919d-413861904646"', True),
        (f'{TEST_EXT}:code eq "abc"', False),
        (f'{TEST_EXT}:code eq "AbC"', True),
        (f'{TEST_EXT}:code co "B"', False),
        (f'{TEST_EXT}:tags eq "BETA"', True),  # multi-valued: any value
        ('displayName eq "BABS JENSEN"', True),
        # complex attribute without sub-attribute compares its "value" (RFC 7644 §3.4.2.2).
        ('emails co "jensen.org"', True),
        ('emails eq "babs@jensen.org"', True),
        # ne: true if any value differs, and true when the attribute is absent.
        ('emails.type ne "work"', True),
        ('nickName ne "Babs"', False),
        ('title ne "x"', True),
        ('preferredLanguage ne "en-US"', False),
        ('name.middleName ne "Jane"', False),
        ('name.honorificSuffix ne "x"', True),
        ('locale eq "fr"', False),
        ('nickName eq "x" or nickName ne "x"', True),
        # missing attributes: only ne (and eq null) match.
        ('phoneNumbers.display eq "x"', False),
        ('phoneNumbers.display ne "x"', True),
        ('phoneNumbers.display co ""', False),
        ('phoneNumbers.display gt "a"', False),
        ("nickName eq null", False),
        ("nickName ne null", True),
        ("phoneNumbers.display eq null", True),
        ("phoneNumbers.display ne null", False),
        # pr
        ("name pr", True),
        ("emails pr", True),
        ("emails.display pr", False),
        (f"{ENTERPRISE}:manager pr", True),
        (f"{ENTERPRISE}:manager.displayName pr", True),
        (f"{TEST_EXT}:vip pr", True),  # false is a value
        # dateTime: chronological, any offset, fractions.
        ('meta.created eq "2010-01-23T05:56:22+01:00"', True),
        ('meta.created eq "2010-01-23T04:56:22.000Z"', True),
        ('meta.created lt "2010-01-23T04:56:22.001Z"', True),
        (f'{TEST_EXT}:hiredAt lt "2010-01-23T04:56:22Z"', True),
        (f'{TEST_EXT}:hiredAt sw "2010-01-23T04"', True),
        # numbers
        (f"{TEST_EXT}:level eq 7", True),
        (f"{TEST_EXT}:level eq 7.0", True),
        (f"{TEST_EXT}:level gt 6.5", True),
        (f"{TEST_EXT}:level le 6", False),
        (f"{TEST_EXT}:score ge 3.5", True),
        (f"{TEST_EXT}:score lt 3", False),
        # booleans
        ("active eq true", True),
        ("active ne true", False),
        (f"{TEST_EXT}:vip eq false", True),
        # strings order lexicographically, case-insensitively unless caseExact.
        ('userName gt "BJ"', True),
        ('userName lt "bjensen@example.com"', False),
        ('userName le "BJENSEN@EXAMPLE.COM"', True),
        (f'{TEST_EXT}:code gt "ABC"', True),
        # extension and reference attributes
        (f'{ENTERPRISE}:employeeNumber eq "701984"', True),
        (f'{ENTERPRISE}:manager.value sw "26118915"', True),
        (f'{ENTERPRISE}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d"', True),
        ('groups.$ref ew "c726e15c55b5"', True),
        ('profileUrl eq "https://login.example.com/BJENSEN"', False),  # reference, caseExact
        ('x509Certificates.value sw "MIIDQz"', True),
        (f'{TEST_EXT}:badge eq "QUJD"', True),
        # schemas: URIs compare case-insensitively.
        (f'schemas eq "{ENTERPRISE.upper()}"', True),
        # grouping and negation
        ('not (userName eq "x") and not (not (title pr))', True),
        ('userType eq "x" or (userType eq "Employee" and not (active eq false))', True),
    ],
)
def test_semantics(text: str, expected: bool) -> None:
    assert user_matches(text) is expected


def test_strings_compare_casefolded() -> None:
    # casefold, not lower(): "ß" folds to "ss".
    assert user_matches('displayName eq "STRASSE"', {"displayName": "Straße"})
    assert user_matches('displayName co "ss"', {"displayName": "Straße"})


@pytest.mark.parametrize(
    ("attribute", "value", "present"),
    [
        ("nickName", None, False),
        ("nickName", "", False),
        ("nickName", "x", True),
        (f"{TEST_EXT}:level", 0, True),
        (f"{TEST_EXT}:vip", False, True),
        (f"{TEST_EXT}:tags", [], False),
        (f"{TEST_EXT}:tags", [None, ""], False),
        (f"{TEST_EXT}:tags", ["", "a"], True),
        ("name", {}, False),
        ("name", {"givenName": None, "familyName": ""}, False),
        ("name", {"givenName": "x"}, True),
        ("emails", [], False),
        ("emails", [{}], False),
        ("emails", [{"value": ""}], False),
        ("emails", [{"value": ""}, {"type": "work"}], True),
    ],
)
def test_present_means_non_empty(attribute: str, value: Any, present: bool) -> None:
    urn, _, name = attribute.rpartition(":")
    resource: dict[str, Any] = {TEST_EXT: {name: value}} if urn else {name: value}
    assert user_matches(f"{attribute} pr", resource) is present


def test_unknown_extension_container_shape_does_not_match() -> None:
    resource = {ENTERPRISE: "not an object", "emails": ["not", "objects"], "name": "flat"}
    assert not user_matches(f'{ENTERPRISE}:employeeNumber eq "1"', resource)
    assert user_matches(f'{ENTERPRISE}:employeeNumber ne "1"', resource)
    assert not user_matches('emails[type eq "work"]', resource)
    assert not user_matches('emails.value eq "not"', resource)
    assert not user_matches('name.givenName eq "flat"', resource)


@pytest.mark.parametrize(
    ("resource", "text"),
    [
        ({"active": "yes"}, "active eq true"),
        ({"userName": 5}, 'userName eq "5"'),
        ({"userName": 5}, 'userName co "5"'),
        ({TEST_EXT: {"level": "7"}}, f"{TEST_EXT}:level eq 7"),
        ({TEST_EXT: {"level": True}}, f"{TEST_EXT}:level eq 1"),
        ({TEST_EXT: {"hiredAt": "yesterday"}}, f'{TEST_EXT}:hiredAt lt "2030-01-01T00:00:00Z"'),
        ({TEST_EXT: {"hiredAt": 5}}, f'{TEST_EXT}:hiredAt lt "2030-01-01T00:00:00Z"'),
        ({"meta": {"lastModified": "2011-05-13T04:42:34"}}, 'meta.lastModified eq "x"'),
    ],
)
def test_stored_values_of_the_wrong_type_never_match_and_never_raise(
    resource: dict[str, Any], text: str
) -> None:
    parsed = parse_filter(text)
    assert matches(parsed, resource, USER_TYPE) is False


def test_naive_datetimes_are_utc() -> None:
    resource = {"meta": {"lastModified": "2011-05-13T04:42:34"}}
    assert user_matches('meta.lastModified eq "2011-05-13T04:42:34Z"', resource)


def test_long_chains_evaluate_without_recursion() -> None:
    text = " or ".join(['id eq "x"'] * 300) + " or title pr"
    assert user_matches(text)
    text = " and ".join(["id pr"] * 400)
    assert user_matches(text)


def test_matches_rejects_unknown_attributes_of_an_unchecked_filter() -> None:
    for text in ("nope pr", "name.nope eq 1", 'emails[nope eq "x"]', "name eq 1"):
        with pytest.raises(InvalidFilter):
            matches(parse_filter(text), bjensen(), USER_TYPE)


def test_matches_on_a_group() -> None:
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1",
        "displayName": "Group A",
        "members": [{"value": "u1", "$ref": "../Users/u1", "type": "User"}],
    }
    for text, expected in [
        ('displayName eq "group a"', True),
        ('members[value eq "u1"]', True),
        ('members.value eq "u2"', False),
        ('members eq "u1"', True),
        ("members.$ref pr", True),
    ]:
        parsed = parse_filter(text)
        check_filter(parsed, GROUP_TYPE)
        assert matches(parsed, group, GROUP_TYPE) is expected


# --- check_filter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "nope pr",
        'name.nope eq "x"',
        'userName.sub eq "x"',
        'employeeNumber eq "1"',  # unqualified extension attribute
        f'{ENTERPRISE}:userName eq "x"',
        'urn:unknown:schema:userName eq "x"',
        # ordering boolean and binary attributes is refused (RFC 7644 §3.4.2.2)
        "active gt true",
        "emails.primary le false",
        'x509Certificates.value gt "a"',
        f'{TEST_EXT}:badge lt "a"',
        # complex attributes without a "value" sub-attribute cannot be compared
        'name eq "Barbara"',
        'addresses co "Hollywood"',
        'meta gt "x"',
        # value types that cannot compare
        "userName eq 5",
        "userName eq true",
        'active eq "true"',
        "active eq 1",
        f'{TEST_EXT}:level eq "7"',
        f"{TEST_EXT}:level eq true",
        f'{TEST_EXT}:score gt "3"',
        'meta.lastModified gt "yesterday"',
        "meta.lastModified gt 2011",
        # substring operators need strings
        f"{TEST_EXT}:level co 7",
        f'{TEST_EXT}:level sw "7"',
        'active co "t"',
        "userName co 5",
        # null only with eq / ne
        "userName co null",
        "userName gt null",
        # value paths
        'userName[value eq "x"]',
        'schemas[value eq "x"]',
        'emails[nope eq "x"]',
        "emails[primary gt true]",
        "emails[display eq 5]",
    ],
)
def test_check_filter_rejects(text: str) -> None:
    with pytest.raises(InvalidFilter):
        check_filter(parse_filter(text), USER_TYPE)


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "x"',
        "userName eq null",
        "userName ne null",
        'USERNAME EQ "x"',
        'name[givenName eq "Barbara"]',  # a single-valued complex attribute may be filtered too
        'meta.lastModified sw "2011"',
        'meta.lastModified gt "2011-05-13"',
        f"{TEST_EXT}:level gt 6.5",
        f"{TEST_EXT}:score eq 3",
        'schemas eq "urn:x"',
        'groups.$ref co "Groups"',
        'x509Certificates.value eq "QUJD"',
        'x509Certificates.value co "QUJD"',
        'emails[type eq "work"].value eq "x"',
        'photos co "example.com"',  # photos.value is a reference
    ],
)
def test_check_filter_accepts(text: str) -> None:
    check_filter(parse_filter(text), USER_TYPE)


def test_check_filter_rejects_asts_the_parser_never_builds() -> None:
    emails = AttrPath(None, "emails", None)
    nested = ValuePath(emails, ValuePath(AttrPath(None, "type", None), Present(emails)))
    with pytest.raises(InvalidFilter, match="nested"):
        check_filter(nested, USER_TYPE)
    with pytest.raises(InvalidFilter):
        check_filter(ValuePath(AttrPath(None, "emails", "value"), Present(emails)), USER_TYPE)


def test_check_filter_error_names_the_attribute() -> None:
    with pytest.raises(InvalidFilter, match="'active'"):
        check_filter(parse_filter("active gt true"), USER_TYPE)
    with pytest.raises(InvalidFilter, match=r"Unknown attribute 'name\.nope'"):
        check_filter(parse_filter('name.nope eq "x"'), USER_TYPE)


# --- PATCH value filters ---------------------------------------------------------------------


def emails_attribute() -> Any:
    attr = resolve(AttrPath(None, "emails", None), USER_TYPE)
    assert attr is not None
    return attr


def test_value_filter_check_and_match() -> None:
    emails = emails_attribute()
    work = Compare(AttrPath(None, "type", None), "eq", "WORK")
    check_value_filter(work, emails)
    items = bjensen()["emails"]
    assert [value_matches(work, item, emails) for item in items] == [True, False]
    assert not value_matches(work, "not an object", emails)
    either = Or(work, And(Present(AttrPath(None, "value", None)), work))
    assert [value_matches(either, item, emails) for item in items] == [True, False]


@pytest.mark.parametrize(
    "value_filter",
    [
        Compare(AttrPath(None, "nope", None), "eq", "x"),
        Compare(AttrPath(None, "primary", None), "gt", True),
        Compare(AttrPath(CORE, "type", None), "eq", "work"),
        ValuePath(AttrPath(None, "type", None), Present(AttrPath(None, "value", None))),
    ],
)
def test_value_filter_check_rejects(value_filter: Any) -> None:
    with pytest.raises(ScimError):
        check_value_filter(value_filter, emails_attribute())


def test_value_filter_on_a_simple_attribute_is_rejected() -> None:
    user_name = resolve(AttrPath(None, "userName", None), USER_TYPE)
    assert user_name is not None
    with pytest.raises(InvalidFilter):
        check_value_filter(Present(AttrPath(None, "value", None)), user_name)
    assert not value_matches(Present(AttrPath(None, "value", None)), {"value": 1}, user_name)
