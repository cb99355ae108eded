"""PATCH "add" (RFC 7644 §3.5.2.1) through the protocol, API and worker side."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.commands import Command
from scimflow.pipeline.errors import InvalidPath, InvalidValue, Mutability, ScimError
from scimflow.pipeline.passwords.crypto import verify_password
from scimflow.pipeline.scim.protocol import ScimProtocol
from tests.conftest import patch_body, sample_paths

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BABS = "2819c223-7f76-453a-919d-413861904646"
MANDY = "902c246b-6245-4190-8e05-00816be7344a"

Resource = dict[str, Any]
LoadSample = Callable[[str], Any]


def create(protocol: ScimProtocol, type_name: str, body: dict[str, Any]) -> Resource:
    """A canonical current resource, built the way the API builds one (POST)."""
    schema = USER_SCHEMA if type_name == "User" else GROUP_SCHEMA
    resource = protocol.validate_create(type_name, "id", {"schemas": [schema], **body}).resource
    assert resource is not None
    return resource


def run_patch(
    protocol: ScimProtocol, type_name: str, current: Resource, payload: Any
) -> tuple[Resource, bool]:
    """validate_patch, checking that it leaves `current` alone and that the worker, replaying
    the command as the journal stores it (JSON), reaches the same state."""
    before = copy.deepcopy(current)
    command, new, changed = protocol.validate_patch(type_name, "id", payload, current)
    assert current == before
    journaled = Command.from_json(json.loads(json.dumps(command.to_json())))
    assert protocol.apply(journaled, current) == (new, changed)
    assert current == before
    return new, changed


def fails_with(
    protocol: ScimProtocol, type_name: str, current: Resource, payload: Any
) -> ScimError:
    """validate_patch must raise a 400-class ScimError and leave `current` alone."""
    before = copy.deepcopy(current)
    with pytest.raises(ScimError) as caught:
        protocol.validate_patch(type_name, "id", payload, current)
    assert current == before
    assert 400 <= caught.value.status < 500
    return caught.value


@pytest.fixture
def user(protocol: ScimProtocol) -> Resource:
    return create(
        protocol,
        "User",
        {
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        },
    )


@pytest.fixture
def group(protocol: ScimProtocol) -> Resource:
    return create(
        protocol,
        "Group",
        {"displayName": "Tour Guides", "members": [{"value": MANDY, "display": "Mandy"}]},
    )


# --- The RFC 7644 §3.5.2.1 samples -----------------------------------------------------------

WORK_EMAIL = {"value": "bjensen@example.com", "type": "work", "primary": True}
HOME_EMAIL = {"value": "babs@jensen.org", "type": "home"}
SAMPLE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "rfc7644/rfc7644-3.5.2.1-add-emails.json": ("User", {"emails": [WORK_EMAIL, HOME_EMAIL]}),
    "rfc7644/rfc7644-3.5.2.1-add-member.json": (
        "Group",
        {
            "members": [
                {"value": MANDY, "display": "Mandy"},
                {
                    "display": "Babs Jensen",
                    "$ref": "https://example.com/v2/Users/2819c223...413861904646",
                    "value": BABS,
                },
            ]
        },
    ),
    "rfc7644/rfc7644-3.5.2.1-add-no-path.json": (
        "User",
        {"emails": [WORK_EMAIL, HOME_EMAIL], "nickName": "Babs"},
    ),
}
ADD_SAMPLES = sample_paths("rfc7644/rfc7644-3.5.2.1-*.json")


def test_every_add_sample_has_an_expectation() -> None:
    """RFC 7644 §3.5.2.1: each "add" sample in the corpus is covered below."""
    assert sorted(SAMPLE_CASES) == ADD_SAMPLES


@pytest.mark.parametrize("name", ADD_SAMPLES)
def test_add_sample(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource, group: Resource, name: str
) -> None:
    """RFC 7644 §3.5.2.1: the RFC's "add" examples give the documented state, replay is a no-op."""
    type_name, expected_changes = SAMPLE_CASES[name]
    current = user if type_name == "User" else group
    payload = load_sample(name)
    new, changed = run_patch(protocol, type_name, current, payload)
    assert changed is True
    assert new == {**current, **expected_changes}
    assert run_patch(protocol, type_name, new, payload) == (new, False)


# --- Targets ---------------------------------------------------------------------------------


def test_add_to_single_valued_sets_it(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: add to an unassigned single-valued attribute sets it."""
    new, changed = run_patch(
        protocol, "User", user, patch_body({"op": "add", "path": "title", "value": "Guide"})
    )
    assert changed is True
    assert new == {**user, "title": "Guide"}


def test_add_to_assigned_single_valued_replaces_it(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: "If the target location specifies a single-valued attribute, the
    existing value is replaced"."""
    new, _ = run_patch(
        protocol, "User", user, patch_body({"op": "add", "path": "userName", "value": "babs"})
    )
    assert new["userName"] == "babs"


def test_add_attribute_names_are_case_insensitive(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.1: a path names an attribute case-insensitively; it is stored schema-cased."""
    new, _ = run_patch(
        protocol, "User", user, patch_body({"op": "add", "path": "NICKNAME", "value": "Babs"})
    )
    assert new["nickName"] == "Babs"
    assert "NICKNAME" not in new


def test_add_to_complex_merges_sub_attributes(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: add to a complex attribute sets the given sub-attributes, keeps others."""
    new, changed = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {"op": "add", "path": "name", "value": {"middleName": "Jane", "familyName": "Smith"}}
        ),
    )
    assert changed is True
    assert new["name"] == {"givenName": "Barbara", "familyName": "Smith", "middleName": "Jane"}


def test_add_sub_attribute_of_complex(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: add with an attrPath to a sub-attribute sets just that sub-attribute."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "add", "path": "name.honorificPrefix", "value": "Ms."}),
    )
    assert new["name"] == {"givenName": "Barbara", "familyName": "Jensen", "honorificPrefix": "Ms."}


def test_add_to_multi_valued_appends(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: add to a multi-valued attribute adds the new values."""
    phone = {"value": "555-555-5555", "type": "work"}
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {"op": "add", "path": "emails", "value": [HOME_EMAIL]},
            {"op": "add", "path": "phoneNumbers", "value": [phone]},
        ),
    )
    assert new["emails"] == [WORK_EMAIL, HOME_EMAIL]
    assert new["phoneNumbers"] == [phone]


def test_add_existing_values_does_not_duplicate(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: values already present are not added again, so nothing changes."""
    new, changed = run_patch(
        protocol, "User", user, patch_body({"op": "add", "path": "emails", "value": [WORK_EMAIL]})
    )
    assert changed is False
    assert new == user


def test_add_member_twice_with_another_display_is_one_member(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7644 §3.5.2.1 / RFC 7643 §4.2: a member is identified by its immutable "value"."""
    new, changed = run_patch(
        protocol,
        "Group",
        group,
        patch_body(
            {"op": "add", "path": "members", "value": [{"value": MANDY, "display": "M. P."}]}
        ),
    )
    assert changed is False
    assert new["members"] == [{"value": MANDY, "display": "Mandy"}]


def test_add_same_member_twice_in_one_request_is_one_member(
    protocol: ScimProtocol, group: Resource
) -> None:
    """RFC 7644 §3.5.2.1: a value repeated in one "add" is added once."""
    new, _ = run_patch(
        protocol,
        "Group",
        group,
        patch_body(
            {
                "op": "add",
                "path": "members",
                "value": [{"value": BABS, "display": "Babs"}, {"value": BABS, "display": "B."}],
            }
        ),
    )
    assert new["members"] == [
        {"value": MANDY, "display": "Mandy"},
        {"value": BABS, "display": "Babs"},
    ]


def test_add_single_object_to_multi_valued(protocol: ScimProtocol, group: Resource) -> None:
    """RFC 7644 §3.5.2.1: a single value (not an array) added to a multi-valued attribute."""
    new, changed = run_patch(
        protocol,
        "Group",
        group,
        patch_body({"op": "add", "path": "members", "value": {"value": BABS}}),
    )
    assert changed is True
    assert new["members"] == [{"value": MANDY, "display": "Mandy"}, {"value": BABS}]


def test_add_empty_array_changes_nothing(protocol: ScimProtocol, group: Resource) -> None:
    """RFC 7644 §3.5.2.1 / RFC 7643 §2.5: adding no values leaves the members as they are.

    Regression: the empty value used to become a removal and emptied the group.
    """
    values: list[Any] = [[], None]
    for value in values:
        new, changed = run_patch(
            protocol, "Group", group, patch_body({"op": "add", "path": "members", "value": value})
        )
        assert (new, changed) == (group, False)


def test_add_empty_complex_changes_nothing(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: adding an empty set of sub-attributes to a complex attribute merges
    nothing."""
    new, changed = run_patch(
        protocol, "User", user, patch_body({"op": "add", "path": "name", "value": {}})
    )
    assert (new, changed) == (user, False)


def test_add_null_to_simple_attribute_unassigns_it(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.5: add to a single-valued attribute replaces it, and null is unassigned."""
    current = {**user, "title": "Guide"}
    new, changed = run_patch(
        protocol, "User", current, patch_body({"op": "add", "path": "title", "value": None})
    )
    assert changed is True
    assert new == user


def test_add_without_path_adds_each_attribute(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.5.2.1: without "path" the value is a resource fragment; dotted and
    URN-qualified keys name their targets (Entra aadOptscim062020)."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {
                "op": "add",
                "value": {
                    "title": "Guide",
                    "name.middleName": "Jane",
                    f"{ENTERPRISE}:department": "Tours",
                    ENTERPRISE: {"costCenter": "4130"},
                },
            }
        ),
    )
    assert new["title"] == "Guide"
    assert new["name"]["middleName"] == "Jane"
    assert new[ENTERPRISE] == {"department": "Tours", "costCenter": "4130"}


def test_add_without_path_ignores_read_only_keys(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.2: read-only attributes inside a resource-shaped value are ignored."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {"op": "add", "value": {"id": "other", "meta": {}, "groups": [], "title": "Guide"}}
        ),
    )
    assert new == {**user, "title": "Guide"}


def test_add_password_is_hashed(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §4.1.1: the writeOnly password is stored only as a hash."""
    command, new, _ = protocol.validate_patch(
        "User", "id", patch_body({"op": "add", "path": "password", "value": "s3cret"}), user
    )
    assert verify_password("s3cret", new["password"])
    assert "s3cret" not in json.dumps(command.to_json())
    assert protocol.apply(command, user) == (new, True)


def test_add_extension_attribute_by_urn_path(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7644 §3.10 / RFC 7643 §3.3: a URN-qualified path adds an extension attribute."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body({"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": "m1"}}),
    )
    assert new[ENTERPRISE] == {"manager": {"value": "m1"}}


# --- Value filters ---------------------------------------------------------------------------


def test_add_through_filter_without_match_creates_the_value(protocol: ScimProtocol) -> None:
    """RFC 7644 §3.5.2.1 (Entra): add at emails[type eq "work"].value without a work email
    creates {type: work, value}."""
    current = create(
        protocol, "User", {"userName": "babs", "emails": [{"value": "b@home", "type": "home"}]}
    )
    payload = patch_body({"op": "add", "path": 'emails[type eq "work"].value', "value": "b@work"})
    new, changed = run_patch(protocol, "User", current, payload)
    assert changed is True
    assert new["emails"] == [
        {"value": "b@home", "type": "home"},
        {"type": "work", "value": "b@work"},
    ]
    assert run_patch(protocol, "User", new, payload) == (new, False)


def test_add_through_filter_with_match_sets_the_sub_attribute(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7644 §3.5.2.1: add at a filtered sub-attribute sets it on the matching values only."""
    current = {**user, "emails": [WORK_EMAIL, HOME_EMAIL]}
    new, _ = run_patch(
        protocol,
        "User",
        current,
        patch_body({"op": "add", "path": 'emails[type eq "work"].value', "value": "babs@work"}),
    )
    assert new["emails"] == [{**WORK_EMAIL, "value": "babs@work"}, HOME_EMAIL]


def test_add_through_filter_stores_schema_cased_names(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7643 §2.1: a value created from `Type eq "work"` stores "type", so replay matches it.

    Regression: the key was stored as written ("Type") and each replay added another email.
    """
    current = {**user, "emails": [HOME_EMAIL]}
    payload = patch_body({"op": "add", "path": 'emails[TYPE eq "work"].value', "value": "b@w"})
    new, _ = run_patch(protocol, "User", current, payload)
    assert new["emails"] == [HOME_EMAIL, {"type": "work", "value": "b@w"}]
    assert run_patch(protocol, "User", new, payload) == (new, False)


def test_add_through_eq_null_filter_creates_no_null(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.5: `type eq null` describes a value without a type; no null is stored."""
    current = {k: v for k, v in user.items() if k != "emails"}
    new, _ = run_patch(
        protocol,
        "User",
        current,
        patch_body({"op": "add", "path": "emails[type eq null].value", "value": "b@x"}),
    )
    assert new["emails"] == [{"value": "b@x"}]


def test_add_through_non_equality_filter_without_match_is_no_target(
    protocol: ScimProtocol, user: Resource
) -> None:
    """RFC 7644 §3.12 noTarget: a filter that does not describe one value cannot create it."""
    error = fails_with(
        protocol,
        "User",
        user,
        patch_body({"op": "add", "path": 'emails[type ne "work"].value', "value": "x@y"}),
    )
    assert error.scim_type == "noTarget"


# --- primary ---------------------------------------------------------------------------------


def primaries(resource: Resource, name: str = "emails") -> list[str]:
    return [item["value"] for item in resource[name] if item.get("primary") is True]


def test_add_primary_value_clears_previous_primary(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.4: adding a primary value makes the previous primary non-primary."""
    new, _ = run_patch(
        protocol,
        "User",
        user,
        patch_body(
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "n@x", "type": "other", "primary": True}],
            }
        ),
    )
    assert primaries(new) == ["n@x"]
    assert new["emails"][0] == {**WORK_EMAIL, "primary": False}


def test_add_primary_sub_attribute_before_old_primary(protocol: ScimProtocol) -> None:
    """RFC 7643 §2.4: the value just made primary stays primary wherever it sits in the list.

    Regression: a primary set on a value listed before the old primary was reverted.
    """
    current = create(
        protocol,
        "User",
        {
            "userName": "babs",
            "emails": [
                {"value": "h@x", "type": "home"},
                {"value": "w@x", "type": "work", "primary": True},
            ],
        },
    )
    for op in ("add", "replace"):
        new, _ = run_patch(
            protocol,
            "User",
            current,
            patch_body({"op": op, "path": 'emails[type eq "home"].primary', "value": True}),
        )
        assert primaries(new) == ["h@x"]


def test_add_two_primary_values_is_invalid(protocol: ScimProtocol, user: Resource) -> None:
    """RFC 7643 §2.4: "The primary attribute value 'true' MUST appear no more than once"."""
    error = fails_with(
        protocol,
        "User",
        user,
        patch_body(
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": True}],
            }
        ),
    )
    assert isinstance(error, InvalidValue)


# --- Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("groups", [{"value": "g1"}]),
        ("id", "other"),
        ("meta", {"resourceType": "User"}),
        ("meta.created", "2020-01-01T00:00:00Z"),
        ('groups[value eq "g1"].display', "x"),
    ],
)
def test_add_to_read_only_is_mutability(
    protocol: ScimProtocol, user: Resource, path: str, value: Any
) -> None:
    """RFC 7644 §3.5.2: a client MUST NOT modify a readOnly attribute (scimType mutability)."""
    error = fails_with(
        protocol, "User", user, patch_body({"op": "add", "path": path, "value": value})
    )
    assert isinstance(error, Mutability)
    assert error.status == 400


@pytest.mark.parametrize(
    "path",
    [
        "nickname2",
        "name.nickName",
        "userName.value",
        'title[value eq "x"]',
        f"{ENTERPRISE}:shoeSize",
        "urn:example:unknown:2.0:User:title",
        "name..givenName",
    ],
)
def test_add_to_unknown_path_is_invalid_path(
    protocol: ScimProtocol, user: Resource, path: str
) -> None:
    """RFC 7644 §3.5.2 / Table 9: a path naming no attribute is invalidPath."""
    error = fails_with(
        protocol, "User", user, patch_body({"op": "add", "path": path, "value": "x"})
    )
    assert isinstance(error, InvalidPath)


@pytest.mark.parametrize(
    "path", ['emails[kind eq "work"].value', "emails[primary gt true]", "emails[type eq 1]"]
)
def test_add_through_unusable_filter_is_rejected(
    protocol: ScimProtocol, user: Resource, path: str
) -> None:
    """RFC 7644 Table 9: a path filter naming no sub-attribute, or comparing in a way the type
    does not support, is invalidFilter (applicable to PATCH path filters) or invalidPath."""
    error = fails_with(
        protocol, "User", user, patch_body({"op": "add", "path": path, "value": "x"})
    )
    assert error.status == 400
    assert error.scim_type in ("invalidFilter", "invalidPath")


def test_add_without_value_is_invalid_value(
    protocol: ScimProtocol, load_sample: LoadSample, user: Resource
) -> None:
    """RFC 7644 §3.5.2.1: "The operation MUST contain a 'value' member"."""
    error = fails_with(
        protocol, "User", user, load_sample("invalid/invalidValue-patch-add-without-value.json")
    )
    assert isinstance(error, InvalidValue)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("active", "yes"),
        ("userName", 701984),
        ("emails", [{"value": "x", "shoeSize": 9}]),
        ("name", "Babs"),
        (None, ["title", "x"]),
    ],
)
def test_add_with_wrong_value_type_is_invalid_value(
    protocol: ScimProtocol, user: Resource, path: str | None, value: Any
) -> None:
    """RFC 7644 §3.12 invalidValue: the value is not compatible with the attribute type."""
    operation: dict[str, Any] = {"op": "add", "value": value}
    if path is not None:
        operation["path"] = path
    error = fails_with(protocol, "User", user, patch_body(operation))
    assert isinstance(error, InvalidValue)
