"""PATCH "remove" (RFC 7644 §3.5.2.2) through the protocol, API and worker side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidValue, Mutability, NoTarget
from scimflow.pipeline.scim.patch_paths import parse_path
from scimflow.pipeline.scim.protocol import ScimProtocol
from tests.conftest import patch_body, sample_paths
from tests.unit.pipeline.scim.test_patch_add import create, fails_with, run_patch

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BABS = "2819c223-7f76-453a-919d-413861904646"
MANDY = "902c246b-6245-4190-8e05-00816be7344a"
# The RFC abbreviates ids differently in each example; the group below holds all of them.
BABS_3_5_2_2_ONE = "2819c223-7f76-...413861904646"
BABS_3_5_2_2_AND_ADD = "2819c223...919d-413861904646"
BABS_REF = "https://example.com/v2/Users/2819c223...413861904646"
JAMES_REF = "https://example.com/v2/Users/08e1d05d...473d93df9210"

Resource = dict[str, Any]
LoadSample = Callable[[str], Any]


@pytest.fixture
def group(protocol: ScimProtocol) -> Resource:
    return create(
        protocol,
        "Group",
        {
            "displayName": "Tour Guides",
            "members": [
                {"value": BABS_3_5_2_2_ONE, "display": "Babs Jensen"},
                {"value": BABS_3_5_2_2_AND_ADD, "display": "Babs Jensen"},
                {"value": MANDY, "display": "Mandy Pepperidge"},
            ],
        },
    )


@pytest.fixture
def user(protocol: ScimProtocol, bjensen: Resource) -> Resource:
    """The RFC 7643 §8.2 user with the enterprise extension of §8.3."""
    return {**bjensen, ENTERPRISE: {"department": "Tour Operations", "costCenter": "4130"}}


# --- The RFC 7644 §3.5.2.2 samples -----------------------------------------------------------


def members_without(group: Resource, *values: str) -> list[dict[str, Any]]:
    return [member for member in group["members"] if member["value"] not in values]


def expected_remove_all_members(group: Resource, user: Resource) -> Resource:
    return {"displayName": "Tour Guides"}


def expected_remove_all_then_add(group: Resource, user: Resource) -> Resource:
    return {
        "displayName": "Tour Guides",
        "members": [
            {"display": "Babs Jensen", "$ref": BABS_REF, "value": BABS},
            {
                "display": "James Smith",
                "$ref": JAMES_REF,
                "value": "08e1d05d-121c-4561-8b96-473d93df9210",
            },
        ],
    }


def expected_remove_emails_filter(group: Resource, user: Resource) -> Resource:
    # Only the work email ending in example.com goes; the home email stays.
    return {**user, "emails": [{"value": "babs@jensen.org", "type": "home"}]}


def expected_remove_members_and_add(group: Resource, user: Resource) -> Resource:
    james = {"display": "James Smith", "$ref": JAMES_REF, "value": "08e1d05d...473d93df9210"}
    return {**group, "members": [*members_without(group, BABS_3_5_2_2_AND_ADD), james]}


def expected_remove_one_member(group: Resource, user: Resource) -> Resource:
    return {**group, "members": members_without(group, BABS_3_5_2_2_ONE)}


Expectation = Callable[[Resource, Resource], Resource]
SAMPLE_CASES: dict[str, tuple[str, Expectation]] = {
    "rfc7644/rfc7644-3.5.2.2-remove-all-members.json": ("Group", expected_remove_all_members),
    "rfc7644/rfc7644-3.5.2.2-remove-all-then-add-members.json": (
        "Group",
        expected_remove_all_then_add,
    ),
    "rfc7644/rfc7644-3.5.2.2-remove-emails-filter.json": ("User", expected_remove_emails_filter),
    "rfc7644/rfc7644-3.5.2.2-remove-members-and-add.json": (
        "Group",
        expected_remove_members_and_add,
    ),
    "rfc7644/rfc7644-3.5.2.2-remove-one-member.json": ("Group", expected_remove_one_member),
}
REMOVE_SAMPLES = sample_paths("rfc7644/rfc7644-3.5.2.2-*.json")


def test_every_remove_sample_has_an_expectation() -> None:
    """RFC 7644 §3.5.2.2: each "remove" sample in the corpus is covered below."""
    assert sorted(SAMPLE_CASES) == REMOVE_SAMPLES


@pytest.mark.parametrize("name", REMOVE_SAMPLES)
def test_remove_sample(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource, group: Resource, name: str
) -> None:
    """RFC 7644 §3.5.2.2: the RFC's "remove" examples give the documented state; replaying the
    request changes nothing."""
    type_name, expected = SAMPLE_CASES[name]
    current = user if type_name == "User" else group
    payload = load_sample(name)
    new, changed = run_patch(protocol, type_name, current, payload)
    assert changed is True
    assert new == expected(group, user)
    assert run_patch(protocol, type_name, new, payload) == (new, False)


def test_filter_without_space_after_eq_is_accepted(load_sample: LoadSample) -> None:
    """RFC 7644 §3.5.2.2 prints `members[value eq"…"]`. The §3.4.2.2 ABNF needs SP before
    compValue, so this is outside the grammar; the parser accepts it on purpose (filters.py:
    whitespace is free where tokens are self-delimiting), with the same meaning as the spaced
    form. The removal in `test_remove_sample` above relies on this."""
    body = load_sample("rfc7644/rfc7644-3.5.2.2-remove-members-and-add.json")
    path = body["Operations"][0]["path"]
    assert 'eq"' in path
    assert parse_path(path) == parse_path(path.replace('eq"', 'eq "'))


# --- Targets ---------------------------------------------------------------------------------


def test_remove_single_valued_attribute(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.2: "If the target location is a single-valued attribute, the attribute
    and its associated value is removed"."""
    payload = patch_body({"op": "remove", "path": "title"})
    new, changed = run_patch(protocol, "User", user, payload)
    assert changed is True
    assert new == {k: v for k, v in user.items() if k != "title"}
    assert run_patch(protocol, "User", new, payload) == (new, False)


def test_remove_whole_multi_valued_attribute(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.2: without a filter, all values of a multi-valued attribute go."""
    new, _ = run_patch(protocol, "User", user, patch_body({"op": "remove", "path": "phoneNumbers"}))
    assert "phoneNumbers" not in new


def test_remove_filtered_subset(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.2: with a value filter, only the matching values are removed."""
    new, changed = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "remove", "path": 'phoneNumbers[type eq "work"]'}),
    )
    assert changed is True
    assert new["phoneNumbers"] == [{"value": "555-555-4444", "type": "mobile"}]
    assert new["emails"] == user["emails"]


def test_remove_every_value_through_filter_unassigns(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7643 §2.5: removing every value leaves the attribute unassigned, not `[]`."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "remove", "path": 'emails[type eq "work" or type eq "home"]'}),
    )
    assert "emails" not in new


def test_remove_member_not_present_is_a_no_op(protocol: ScimProtocol, group: Resource) -> None:
    """RFC 7644 §3.5.2.2: "If the user was not a member of this group, no changes should be
    made to the resource, and a success response should be returned"."""
    new, changed = run_patch(
        protocol,
        "Group",
        group,
        patch_body({"op": "remove", "path": 'members[value eq "not-a-member"]'}),
    )
    assert (new, changed) == (group, False)


def test_remove_all_members(protocol: ScimProtocol, group: Resource) -> None:
    """RFC 7644 §3.5.2.2: remove of `members` removes all members; the group stays valid."""
    new, changed = run_patch(
        protocol, "Group", group, patch_body({"op": "remove", "path": "members"})
    )
    assert changed is True
    assert new == {"displayName": "Tour Guides"}


def test_remove_sub_attribute_through_value_path(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.2: a valuePath with a subAttr removes that sub-attribute of the matching
    values only."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "remove", "path": 'addresses[type eq "home"].streetAddress'}),
    )
    work, home = new["addresses"]
    assert work == user["addresses"][0]
    assert "streetAddress" not in home
    assert home["locality"] == "Hollywood"


def test_remove_last_sub_attribute_drops_the_value(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.5: a value left with no sub-attributes is unassigned and dropped."""
    current = create(
        protocol,
        "User",
        {"userName": "babs", "emails": [{"value": "a@x"}, {"value": "b@x", "type": "home"}]},
    )
    new, _ = run_patch(
        protocol,
        "User",
        current,
        patch_body({"op": "remove", "path": 'emails[value eq "a@x"].value'}),
    )
    assert new["emails"] == [{"value": "b@x", "type": "home"}]


def test_remove_sub_attribute_of_complex(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.2: remove of `name.middleName` removes that sub-attribute only."""
    new, _ = run_patch(
        protocol, "User", user, patch_body({"op": "remove", "path": "name.middleName"})
    )
    assert new["name"] == {k: v for k, v in user["name"].items() if k != "middleName"}


def test_remove_only_sub_attribute_unassigns_complex(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.5: a complex attribute whose last sub-attribute is removed is unassigned."""
    current = create(protocol, "User", {"userName": "babs", "name": {"givenName": "Babs"}})
    new, _ = run_patch(
        protocol, "User", current, patch_body({"op": "remove", "path": "name.givenName"})
    )
    assert new == {"userName": "babs"}


def test_remove_extension_attribute(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §3.3: a URN-qualified path removes an extension attribute; an extension left
    empty is dropped from the resource."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {"op": "remove", "path": f"{ENTERPRISE}:department"},
            {"op": "remove", "path": f"{ENTERPRISE}:costCenter"},
        ),
    )
    assert ENTERPRISE not in new
    assert new == {k: v for k, v in user.items() if k != ENTERPRISE}


def test_remove_whole_member_despite_immutable_sub_attributes(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7643 §2.2 / §4.2: immutability guards a member's sub-attributes, not membership."""
    new, changed = run_patch(
        protocol,
        "Group",
        group,
        patch_body({"op": "remove", "path": f'members[value eq "{MANDY}"]'}),
    )
    assert changed is True
    assert new["members"] == members_without(group, MANDY)


def test_remove_entra_member_value_array(
    protocol: ScimProtocol, load_sample: LoadSample, group: Resource
) -> None:
    """RFC 7644 §3.5.2.2 (Entra dialect): `Remove members` with a value array removes exactly
    the listed members, never all of them."""
    current = {**group, "members": [*group["members"], {"value": "u1091"}]}
    payload = load_sample("idp/entra/entra-patch-remove-members-value-array.json")
    new, changed = run_patch(protocol, "Group", current, payload)
    assert changed is True
    assert new == group


# --- Errors ----------------------------------------------------------------------------------


def test_remove_without_path_is_no_target(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7644 §3.5.2.2: "If 'path' is unspecified, the operation fails with HTTP status code
    400 and a 'scimType' error code of 'noTarget'"."""
    error = fails_with(
        protocol, "User", user, load_sample("invalid/noTarget-patch-remove-no-path.json")
    )
    assert isinstance(error, NoTarget)
    assert error.to_body()["scimType"] == "noTarget"


def test_remove_of_required_user_name_is_mutability(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7644 §3.5.2.2: removing a required attribute fails with scimType mutability."""
    error = fails_with(
        protocol, "User", user, load_sample("invalid/mutability-patch-remove-username.json")
    )
    assert isinstance(error, Mutability)


def test_remove_of_required_display_name_is_mutability(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7644 §3.5.2.2 / RFC 7643 §4.2: a Group's displayName is required."""
    error = fails_with(
        protocol, "Group", group, patch_body({"op": "remove", "path": "displayName"})
    )
    assert isinstance(error, Mutability)


@pytest.mark.parametrize(
    "path",
    [
        "id",
        "meta",
        "meta.version",
        "groups",
        'groups[value eq "g1"]',
        f"{ENTERPRISE}:manager.displayName",
    ],
)
def test_remove_of_read_only_is_mutability(
    protocol: ScimProtocol, user: Resource, path: str
) -> None:
    """RFC 7644 §3.5.2.2: removing a read-only attribute fails with scimType mutability."""
    error = fails_with(protocol, "User", user, patch_body({"op": "remove", "path": path}))
    assert isinstance(error, Mutability)


@pytest.mark.parametrize(
    "path", [f'members[value eq "{MANDY}"].display', f'members[value eq "{MANDY}"].value']
)
def test_remove_of_immutable_sub_attribute_value_is_mutability(
    protocol: ScimProtocol, group: Resource, path: str
) -> None:
    """RFC 7643 §2.2: an immutable value "SHALL NOT be updated", so it cannot be removed."""
    error = fails_with(protocol, "Group", group, patch_body({"op": "remove", "path": path}))
    assert isinstance(error, Mutability)


def test_remove_of_absent_immutable_sub_attribute_is_a_no_op(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7644 §3.5.2.2: removing what is not there changes nothing, immutable or not."""
    new, changed = run_patch(
        protocol,
        "Group",
        group,
        patch_body({"op": "remove", "path": f'members[value eq "{MANDY}"].type'}),
    )
    assert (new, changed) == (group, False)


def test_remove_with_a_value_is_refused(protocol: ScimProtocol, group: Resource) -> None:
    """RFC 7644 §3.5.2.2 gives "remove" no value; one that is not Entra's member array is
    refused rather than read as "remove everything"."""
    error = fails_with(
        protocol,
        "Group",
        group,
        patch_body({"op": "remove", "path": "members", "value": [{"display": "Mandy"}]}),
    )
    assert isinstance(error, InvalidValue)
