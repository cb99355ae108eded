"""PATCH "replace" (RFC 7644 §3.5.2.3) through the protocol, API and worker side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidValue, Mutability, NoTarget
from scimflow.pipeline.scim.protocol import ScimProtocol
from tests.conftest import patch_body, sample_paths
from tests.unit.pipeline.scim.test_patch_add import create, fails_with, run_patch

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BABS = "2819c223-7f76-453a-919d-413861904646"
MANDY = "902c246b-6245-4190-8e05-00816be7344a"

Resource = dict[str, Any]
LoadSample = Callable[[str], Any]


@pytest.fixture
def user(bjensen: Resource) -> Resource:
    """The RFC 7643 §8.2 user: a primary work email and a primary work address."""
    return bjensen


@pytest.fixture
def group(tour_guides: Resource) -> Resource:
    """The RFC 7643 §8.4 group: Babs and Mandy."""
    return tour_guides


# --- The RFC 7644 §3.5.2.3 samples -----------------------------------------------------------


def expected_replace_members(user: Resource, group: Resource) -> Resource:
    return {
        "displayName": "Tour Guides",
        "members": [
            {
                "display": "Babs Jensen",
                "$ref": "https://example.com/v2/Users/2819c223...413861904646",
                "value": "2819c223...413861904646",
            },
            {
                "display": "James Smith",
                "$ref": "https://example.com/v2/Users/08e1d05d...473d93df9210",
                "value": "08e1d05d...473d93df9210",
            },
        ],
    }


def expected_replace_no_path(user: Resource, group: Resource) -> Resource:
    emails = [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    return {**user, "emails": emails, "nickName": "Babs"}


def expected_replace_work_address(user: Resource, group: Resource) -> Resource:
    # A value selected by a filter and replaced without a subAttr is replaced as a whole.
    work = {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    return {**user, "addresses": [work, user["addresses"][1]]}


def expected_replace_work_email_value(user: Resource, group: Resource) -> Resource:
    work, home = user["emails"]
    return {**user, "emails": [{**work, "value": "babs@example.com"}, home]}


def expected_replace_work_street(user: Resource, group: Resource) -> Resource:
    work, home = user["addresses"]
    return {**user, "addresses": [{**work, "streetAddress": "1010 Broadway Ave"}, home]}


Expectation = Callable[[Resource, Resource], Resource]
SAMPLE_CASES: dict[str, tuple[str, Expectation]] = {
    "rfc7644/rfc7644-3.5.2.3-replace-members.json": ("Group", expected_replace_members),
    "rfc7644/rfc7644-3.5.2.3-replace-no-path.json": ("User", expected_replace_no_path),
    "rfc7644/rfc7644-3.5.2.3-replace-work-address.json": ("User", expected_replace_work_address),
    "rfc7644/rfc7644-3.5.2.3-replace-work-email-value.json": (
        "User",
        expected_replace_work_email_value,
    ),
    "rfc7644/rfc7644-3.5.2.3-replace-work-street-address.json": (
        "User",
        expected_replace_work_street,
    ),
}
REPLACE_SAMPLES = sample_paths("rfc7644/rfc7644-3.5.2.3-*.json")


def test_every_replace_sample_has_an_expectation() -> None:
    """RFC 7644 §3.5.2.3: each "replace" sample in the corpus is covered below."""
    assert sorted(SAMPLE_CASES) == REPLACE_SAMPLES


@pytest.mark.parametrize("name", REPLACE_SAMPLES)
def test_replace_sample(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource, group: Resource, name: str
) -> None:
    """RFC 7644 §3.5.2.3: the RFC's "replace" examples give the documented state; replaying the
    request changes nothing."""
    type_name, expected = SAMPLE_CASES[name]
    # The §8.2 user already has the no-path example's emails and nickname; start without them.
    current = {
        "User": {k: v for k, v in user.items() if k not in ("emails", "nickName")}
        if name.endswith("replace-no-path.json")
        else user,
        "Group": group,
    }[type_name]
    payload = load_sample(name)
    new, changed = run_patch(protocol, type_name, current, payload)
    assert changed is True
    assert new == expected(current, group)
    assert run_patch(protocol, type_name, new, payload) == (new, False)


# --- Targets ---------------------------------------------------------------------------------


def test_replace_multi_valued_replaces_all_values(protocol: ScimProtocol, group: Resource) -> None:
    """RFC 7644 §3.5.2.3: "If the target location is a multi-valued attribute and no filter is
    specified, the attribute and all values are replaced"."""
    new, _ = run_patch(
        protocol,
        "Group",
        group,
        patch_body({"op": "replace", "path": "members", "value": [{"value": "u1"}]}),
    )
    assert new["members"] == [{"value": "u1"}]


def test_replace_multi_valued_with_single_object(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.3: a single value given for a multi-valued attribute is a one-item array."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "replace", "path": "emails", "value": {"value": "only@x"}}),
    )
    assert new["emails"] == [{"value": "only@x"}]


def test_replace_through_filter_whole_value(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.3: a valuePath without subAttr replaces each matching value whole."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {
                "op": "replace",
                "path": 'phoneNumbers[type eq "mobile"]',
                "value": {"value": "555-000-0000", "type": "mobile"},
            }
        ),
    )
    assert new["phoneNumbers"] == [
        user["phoneNumbers"][0],
        {"value": "555-000-0000", "type": "mobile"},
    ]


def test_replace_through_filter_sub_attribute(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.3: a valuePath with subAttr replaces that sub-attribute of the matches."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {"op": "replace", "path": 'phoneNumbers[type eq "work"].value', "value": "555-1"}
        ),
    )
    assert new["phoneNumbers"] == [
        {"value": "555-1", "type": "work"},
        user["phoneNumbers"][1],
    ]


def test_replace_through_filter_matching_nothing_is_no_target(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7644 §3.5.2.3: "no record match was made" fails with 400 noTarget."""
    error = fails_with(
        protocol, "User", user, load_sample("invalid/noTarget-patch-replace-filter-no-match.json")
    )
    assert isinstance(error, NoTarget)
    assert error.status == 400


def test_replace_through_filter_does_not_create_missing_value(protocol: ScimProtocol) -> None:
    """RFC 7644 §3.5.2.3: unlike "add", a replace of `emails[type eq "work"].value` on a user
    without a work email is noTarget (docs/ARCHITECTURE.md, "Decisions worth knowing")."""
    current = create(protocol, "User", {"userName": "babs"})
    error = fails_with(
        protocol,
        "User",
        current,
        patch_body({"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@w"}),
    )
    assert isinstance(error, NoTarget)


def test_replace_without_path_replaces_each_attribute(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7644 §3.5.2.3: without "path" the value's attributes replace the resource's."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {
                "op": "replace",
                "value": {"title": "Boss", "active": False, ENTERPRISE: {"department": "Ops"}},
            }
        ),
    )
    assert (new["title"], new["active"], new[ENTERPRISE]) == ("Boss", False, {"department": "Ops"})
    assert new["emails"] == user["emails"]


def test_replace_entra_dotted_keys(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7644 §3.5.2.3 (Entra aadOptscim062020): dotted and URN-qualified keys in a path-less
    value name sub-attributes and extension attributes."""
    payload = load_sample(
        "idp/entra-aadoptscim062020/entra62020-patch-user-noPath-replace-dotted-keys.json"
    )
    new, _ = run_patch(protocol, "User", user, payload)
    assert new["displayName"] == "Bjfe"
    assert new["name"] == {**user["name"], "givenName": "Kkom", "familyName": "Unua"}
    assert new[ENTERPRISE] == {"employeeNumber": "Aklq"}
    assert new["emails"][0] == {**user["emails"][0], "value": "TestMhvaes@test.microsoft.com"}


def test_replace_complex_merges_sub_attributes(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.3: "Sub-attributes that are not specified in the 'value' parameter are
    left unchanged"."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "replace", "path": "name", "value": {"familyName": "Smith"}}),
    )
    assert new["name"] == {**user["name"], "familyName": "Smith"}
    assert new["name"]["givenName"] == "Barbara"


def test_replace_complex_with_null_sub_attribute_unassigns_only_it(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7644 §3.5.2.3 / RFC 7643 §2.5: a sub-attribute given as null is unassigned, the ones
    not given are left unchanged.

    Regression: the null was dropped during coercion and the PATCH silently did nothing.
    """
    for payload in (
        patch_body({"op": "replace", "path": "name", "value": {"givenName": None}}),
        patch_body({"op": "replace", "value": {"name": {"givenName": None, "middleName": "J"}}}),
    ):
        new, changed = run_patch(protocol, "User", user, payload)
        assert changed is True
        assert "givenName" not in new["name"]
        assert new["name"]["familyName"] == "Jensen"


@pytest.mark.parametrize(
    ("operation", "gone"),
    [
        ({"op": "replace", "path": "title", "value": None}, "title"),
        ({"op": "replace", "path": "name", "value": None}, "name"),
        ({"op": "replace", "path": "name", "value": {}}, "name"),
        ({"op": "replace", "path": "emails", "value": None}, "emails"),
        ({"op": "replace", "path": "emails", "value": []}, "emails"),
        ({"op": "replace", "value": {"nickName": None}}, "nickName"),
    ],
)
def test_replace_with_null_unassigns(
    protocol: ScimProtocol, user: Resource, operation: dict[str, Any], gone: str
) -> None:
    """RFC 7643 §2.5: null (or an empty array) is the unassigned state."""
    new, changed = run_patch(protocol, "User", user, patch_body(operation))
    assert changed is True
    assert new == {k: v for k, v in user.items() if k != gone}


def test_replace_primary_clears_other_primary(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.4: replacing a value with a primary one leaves exactly one primary."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {
                "op": "replace",
                "path": 'emails[type eq "home"]',
                "value": {"value": "babs@jensen.org", "type": "home", "primary": True},
            }
        ),
    )
    assert [e["value"] for e in new["emails"] if e.get("primary") is True] == ["babs@jensen.org"]


def test_replace_entra_boolean_string(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7643 §2.3.2 (Entra dialect): `"False"` is read as the boolean false."""
    new, _ = run_patch(protocol, "User", user, load_sample("idp/entra/entra-patch-disable.json"))
    assert new["active"] is False


# --- Mutability ------------------------------------------------------------------------------


def test_replace_immutable_member_value_is_mutability(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7643 §2.2 / §4.2: members.value is immutable; changing it is scimType mutability."""
    error = fails_with(
        protocol,
        "Group",
        group,
        patch_body(
            {"op": "replace", "path": f'members[value eq "{BABS}"].value', "value": "someone"}
        ),
    )
    assert isinstance(error, Mutability)


def test_replace_immutable_member_value_with_same_value_is_a_no_op(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7643 §2.2: an immutable value may be repeated, only not changed."""
    new, changed = run_patch(
        protocol,
        "Group",
        group,
        patch_body({"op": "replace", "path": f'members[value eq "{BABS}"].value', "value": BABS}),
    )
    assert (new, changed) == (group, False)


def test_replace_member_through_filter_with_other_display_is_mutability(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7643 §4.2: members.display is immutable too, also inside a whole-value replace."""
    error = fails_with(
        protocol,
        "Group",
        group,
        patch_body(
            {
                "op": "replace",
                "path": f'members[value eq "{MANDY}"]',
                "value": {"value": MANDY, "display": "M. P."},
            }
        ),
    )
    assert isinstance(error, Mutability)


def test_replace_id_is_mutability(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7644 §3.5.2: a client MUST NOT modify a readOnly attribute such as `id`."""
    error = fails_with(protocol, "User", user, load_sample("invalid/mutability-patch-id.json"))
    assert isinstance(error, Mutability)
    assert error.to_body()["scimType"] == "mutability"


@pytest.mark.parametrize(
    "path", ["meta.lastModified", "groups", f"{ENTERPRISE}:manager.displayName"]
)
def test_replace_read_only_is_mutability(protocol: ScimProtocol, user: Resource, path: str) -> None:
    """RFC 7644 §3.5.2: readOnly attributes and sub-attributes cannot be replaced."""
    error = fails_with(
        protocol, "User", user, patch_body({"op": "replace", "path": path, "value": "x"})
    )
    assert isinstance(error, Mutability)


def test_replace_without_path_echoing_id_is_accepted(
    protocol: ScimProtocol, load_sample: LoadSample, group: Resource
) -> None:
    """RFC 7643 §2.2 (Okta group rename): a read-only `id` inside a path-less value is ignored."""
    new, _ = run_patch(
        protocol, "Group", group, load_sample("idp/okta/okta-patch-group-rename.json")
    )
    assert new == {**group, "displayName": "Test SCIMv2"}


def test_replace_required_with_null_is_mutability(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.2 (applies to any op): unassigning a required attribute is mutability."""
    error = fails_with(
        protocol, "User", user, patch_body({"op": "replace", "path": "userName", "value": None})
    )
    assert isinstance(error, Mutability)


def test_replace_with_wrong_type_is_invalid_value(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.12 invalidValue: the value does not fit the attribute's type."""
    error = fails_with(
        protocol, "User", user, patch_body({"op": "replace", "path": "active", "value": "yes"})
    )
    assert isinstance(error, InvalidValue)


def test_replace_through_filter_with_empty_value_unassigns_it(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7643 §2.5: `{}` is as unassigned as null, so the matching values go.

    Regression (found by test_fuzz.py): an empty object was stored as an email.
    """
    for value in ({}, None, {"display": None}):
        new, changed = run_patch(
            protocol,
            "User",
            user,
            patch_body({"op": "replace", "path": 'emails[type eq "work"]', "value": value}),
        )
        assert changed is True
        assert new["emails"] == [user["emails"][1]]
