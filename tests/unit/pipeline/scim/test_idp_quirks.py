"""IdP dialects, driven by the captured samples in tests/samples/idp/ (see INDEX.md).

Sources (INDEX.md, /work/shared/idp-notes.md): O1 Okta SCIM 2.0 reference; E1 Entra "Develop and
plan provisioning for a SCIM endpoint"; E2 Entra "Known issues ... SCIM 2.0 protocol compliance";
E7 the issue threads showing Entra's bare-string manager. Google and OneLogin publish no bodies;
their samples are RFC-canonical.

Every create and PUT sample validates; every PATCH sample is applied to a sensible current
resource and must produce exactly its documented effect, both through `validate_patch` (API
side) and through `apply` of the journaled command (worker side). Tolerance is narrow: only the
documented shapes are rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidSyntax, InvalidValue
from scimflow.pipeline.passwords.crypto import verify_password
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.scim.schema import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from tests.conftest import canonical, patch_body, sample_paths

Load = Callable[[str], Any]
Resource = dict[str, Any]

ENT = ENTERPRISE_USER_SCHEMA
MISSPELLED_ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

IDP_SAMPLES = sample_paths("idp/**/*.json")
CREATE_SAMPLES = [p for p in IDP_SAMPLES if "-create-" in p]
PUT_SAMPLES = [p for p in IDP_SAMPLES if "-put-" in p]
PATCH_SAMPLES = [p for p in IDP_SAMPLES if "-patch-" in p]

ENTRA_USER = "idp/entra/entra-create-user.json"
ENTRA_GROUP = "idp/entra/entra-create-group.json"
OKTA_USER = "idp/okta/okta-create-user.json"
OKTA_MEMBER = {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
OKTA_GROUP = "idp/okta/okta-create-group.json"
GOOGLE_USER = "idp/google/google-create-user.json"
ONELOGIN_USER = "idp/onelogin/onelogin-create-user.json"

# A member no sample removes: it must survive every removal.
KEEP = {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"}


def name_of(path: str) -> str:
    return PurePosixPath(path).stem


def type_of(body: dict[str, Any]) -> str:
    return "Group" if GROUP_SCHEMA in body.get("schemas", ()) else "User"


class HashOf:
    """Equal to any PBKDF2 hash string of `cleartext` (hashes are salted, so never repeat)."""

    def __init__(self, cleartext: str) -> None:
        self.cleartext = cleartext

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and verify_password(self.cleartext, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HashOf({self.cleartext!r})"


# --- current resources and expected effects -------------------------------------------------

Current = Callable[[ScimProtocol], Resource]
Expect = Callable[[Resource], Resource]


def user_from(sample: str, **changes: Any) -> Current:
    return lambda protocol: canonical(protocol, "User", sample, **changes)


def group_from(sample: str, *members: dict[str, Any], **changes: Any) -> Current:
    return lambda protocol: canonical(
        protocol, "Group", sample, members=list(members) or None, **changes
    )


def member(value: str) -> dict[str, Any]:
    return {"value": value}


def changed(**changes: Any) -> Expect:
    return lambda current: {**current, **changes}


def with_work_email(value: str, current: Resource) -> list[dict[str, Any]]:
    return [
        {**email, "value": value} if email.get("type") == "work" else email
        for email in current["emails"]
    ]


def renamed(given: str | None, family: str, current: Resource) -> dict[str, Any]:
    name = {**current["name"], "familyName": family}
    if given is not None:
        name["givenName"] = given
    return name


CASES: dict[str, tuple[str, Current, Expect]] = {
    # sample name: (resource type, current resource, expected resource after the PATCH)
    # --- Entra default mode (E1, E2) ---
    "entra-patch-add-single-string": ("User", user_from(ENTRA_USER), changed(nickName="Babs")),
    "entra-patch-disable": ("User", user_from(ENTRA_USER), changed(active=False)),
    "entra-patch-disable-boolean": ("User", user_from(ENTRA_USER), changed(active=False)),
    "entra-patch-enable": ("User", user_from(ENTRA_USER, active=False), changed(active=True)),
    "entra-patch-username": (
        "User",
        user_from(ENTRA_USER),
        changed(userName="5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"),
    ),
    "entra-patch-user-email-familyname": (
        "User",
        user_from(ENTRA_USER),
        lambda cur: {
            **cur,
            "emails": with_work_email("updatedEmail@microsoft.com", cur),
            "name": renamed(None, "updatedFamilyName", cur),
        },
    ),
    "entra-patch-user-multi-op": (
        "User",
        user_from(ENTRA_USER),
        lambda cur: {
            **cur,
            "displayName": "Pvlo",
            "emails": with_work_email("TestBcwqnm@test.microsoft.com", cur),
            "name": renamed("Gtfd", "Pkqf", cur),
            "externalId": "Eqpj",
            ENT: {"employeeNumber": "Eqpj"},
        },
    ),
    "entra-patch-manager-bare-string": (
        "User",
        user_from(ENTRA_USER),
        changed(**{ENT: {"manager": {"value": "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"}}}),
    ),
    "entra-patch-manager-legacy-example5": (
        "User",
        user_from(ENTRA_USER),
        changed(
            **{
                ENT: {
                    "manager": {
                        "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                        "$ref": "http://.../scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                    }
                }
            }
        ),
    ),
    "entra-patch-add-members": (
        "Group",
        group_from(ENTRA_GROUP, KEEP),
        changed(members=[KEEP, member("f648f8d5ea4e4cd38e9c")]),  # "$ref": null is dropped
    ),
    "entra-patch-remove-members": (
        "Group",
        group_from(ENTRA_GROUP, member("f648f8d5ea4e4cd38e9c"), KEEP),
        changed(members=[KEEP]),
    ),
    "entra-patch-remove-member-no-ref": (
        "Group",
        group_from(ENTRA_GROUP, KEEP, member("u1091")),
        changed(members=[KEEP]),
    ),
    "entra-patch-remove-members-value-array": (
        "Group",
        group_from(ENTRA_GROUP, member("f648f8d5ea4e4cd38e9c"), KEEP, member("u1091")),
        changed(members=[KEEP]),
    ),
    "entra-patch-group-displayname": (
        "Group",
        group_from(ENTRA_GROUP, KEEP),
        changed(displayName="1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"),
    ),
    # --- Entra with aadOptscim062020 (E2) ---
    "entra62020-patch-add-single-string": ("User", user_from(ENTRA_USER), changed(nickName="Babs")),
    "entra62020-patch-disable": ("User", user_from(ENTRA_USER), changed(active=False)),
    "entra62020-patch-remove-member-filter": (
        "Group",
        group_from(ENTRA_GROUP, member("7f4bc1a3-285e-48ae-8202-5accb43efb0e"), KEEP),
        changed(members=[KEEP]),
    ),
    "entra62020-patch-user-noPath-replace-dotted-keys": (
        "User",
        user_from(ENTRA_USER),
        lambda cur: {
            **cur,
            "emails": with_work_email("TestMhvaes@test.microsoft.com", cur),
            "displayName": "Bjfe",
            "name": renamed("Kkom", "Unua", cur),
            ENT: {"employeeNumber": "Aklq"},
        },
    ),
    # --- Okta (O1) ---
    "okta-patch-deactivate": ("User", user_from(OKTA_USER), changed(active=False)),
    "okta-patch-reactivate": ("User", user_from(OKTA_USER, active=False), changed(active=True)),
    "okta-patch-password": ("User", user_from(OKTA_USER), changed(password=HashOf("2nx161or"))),
    "okta-patch-group-rename": (
        "Group",
        group_from(OKTA_GROUP, KEEP, displayName="Old name"),
        changed(displayName="Test SCIMv2"),  # the `id` in the value is ignored
    ),
    "okta-patch-group-members-remove-then-add": (
        "Group",
        group_from(OKTA_GROUP, member("89bb1940-b905-4575-9e7f-6f887cfb368e"), KEEP),
        changed(members=[KEEP, OKTA_MEMBER]),
    ),
    "okta-patch-group-replace-members": (
        "Group",
        group_from(OKTA_GROUP, KEEP),
        changed(
            members=[
                OKTA_MEMBER,
                {**OKTA_MEMBER, "value": "89bb1940-b905-4575-9e7f-6f887cfb368e"},
            ]
        ),
    ),
    # --- Google Workspace and OneLogin: RFC-canonical (RFC 7644 §3.5.2.3) ---
    "google-patch-deactivate": ("User", user_from(GOOGLE_USER), changed(active=False)),
    "onelogin-patch-deactivate": ("User", user_from(ONELOGIN_USER), changed(active=False)),
}


# --- every sample ----------------------------------------------------------------------------


@pytest.mark.parametrize("sample", CREATE_SAMPLES, ids=name_of)
def test_every_idp_create_sample_validates(
    protocol: ScimProtocol, load_sample: Load, sample: str
) -> None:
    """O1/E1/RFC 7644 §3.3: every captured POST body becomes a canonical resource."""
    body = load_sample(sample)
    command = protocol.validate_create(type_of(body), "new", body)
    assert command.resource
    assert "meta" not in command.resource
    assert "schemas" not in command.resource


@pytest.mark.parametrize("sample", PUT_SAMPLES, ids=name_of)
def test_every_idp_put_sample_validates_against_the_created_user(
    protocol: ScimProtocol, load_sample: Load, sample: str
) -> None:
    """O1 "Update the User" (and AIW deactivation): the PUT body replaces Okta's user."""
    current = canonical(protocol, "User", OKTA_USER)
    body = load_sample(sample)
    resource = protocol.validate_replace("User", body["id"], body, current).resource
    assert resource is not None
    assert resource["active"] is body["active"]
    assert resource["password"] == current["password"]
    assert {"id", "meta", "groups"}.isdisjoint(resource)


@pytest.mark.parametrize("sample", PATCH_SAMPLES, ids=name_of)
def test_every_idp_patch_sample_applies_with_its_documented_effect(
    protocol: ScimProtocol, load_sample: Load, sample: str
) -> None:
    """O1/E1/E2: each captured PATCH normalises, applies, and changes exactly what it says."""
    type_name, make_current, expect = CASES[name_of(sample)]
    current = make_current(protocol)
    snapshot = json.loads(json.dumps(current))
    body = load_sample(sample)
    command, new, was_changed = protocol.validate_patch(type_name, "rid", body, current)
    assert new == expect(current)
    assert was_changed is True
    assert current == snapshot  # validation never mutates the stored state
    # Canonical operations: lower-case ops and schema-cased paths.
    assert all(op["op"] in ("add", "remove", "replace") for op in command.operations)
    # The worker applying the journaled command reaches the same state.
    assert protocol.apply(command, current) == (new, True)


def test_every_idp_patch_sample_has_a_case() -> None:
    """Each PATCH sample in tests/samples/idp/ has a documented expected effect here."""
    assert sorted(CASES) == sorted(name_of(p) for p in PATCH_SAMPLES)


# --- Entra default mode (E1, E2) --------------------------------------------------------------


@pytest.mark.parametrize(
    "sample", ["idp/entra/entra-patch-disable.json", "idp/entra/entra-patch-enable.json"]
)
def test_entra_boolean_strings_are_stored_as_booleans(
    protocol: ScimProtocol, load_sample: Load, sample: str
) -> None:
    """E2 "disable users, without feature flag": "False"/"True" strings become JSON booleans."""
    current = canonical(protocol, "User", ENTRA_USER)
    body = load_sample(sample)
    sent = body["Operations"][0]["value"]
    command, new, _ = protocol.validate_patch("User", "rid", body, current)
    assert new["active"] is (sent == "True")
    assert command.operations == ({"op": "replace", "path": "active", "value": sent == "True"},)
    assert type(command.operations[0]["value"]) is bool


def test_entra_disable_is_a_deprovisioning_command(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """E3: Entra disables (active=false) instead of deleting; the command says it deprovisions."""
    current = canonical(protocol, "User", ENTRA_USER)
    body = load_sample("idp/entra/entra-patch-disable.json")
    command, _, _ = protocol.validate_patch("User", "rid", body, current)
    assert command.deprovisions


def test_entra_remove_members_value_array_removes_exactly_those(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """E1 "Remove Members": a value array removes the listed members only, never all of them."""
    others = [member(f"other-{n}") for n in range(3)]
    current = canonical(
        protocol,
        "Group",
        ENTRA_GROUP,
        members=[others[0], member("f648f8d5ea4e4cd38e9c"), others[1], member("u1091"), others[2]],
    )
    body = load_sample("idp/entra/entra-patch-remove-members-value-array.json")
    command, new, _ = protocol.validate_patch("Group", "rid", body, current)
    assert new["members"] == others
    assert command.operations == (
        {"op": "remove", "path": 'members[value eq "f648f8d5ea4e4cd38e9c"]'},
        {"op": "remove", "path": 'members[value eq "u1091"]'},
    )


def test_entra_remove_of_a_member_not_in_the_group_changes_nothing(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """RFC 7644 §3.5.2.2: removing a non-member succeeds and changes nothing (replay-safe)."""
    current = canonical(protocol, "Group", ENTRA_GROUP, members=[KEEP])
    body = load_sample("idp/entra/entra-patch-remove-members.json")
    _, new, was_changed = protocol.validate_patch("Group", "rid", body, current)
    assert new == current
    assert was_changed is False


@pytest.mark.parametrize("awkward_id", ['quote"inside', "back\\slash", "ünïcødé", "a]b[c"])
def test_entra_remove_by_value_handles_any_member_id(
    protocol: ScimProtocol, awkward_id: str
) -> None:
    """E2: the value array is rewritten to value filters; ids are quoted as JSON strings."""
    current = {"displayName": "g", "members": [member(awkward_id), KEEP]}
    body = patch_body({"op": "Remove", "path": "members", "value": [{"value": awkward_id}]})
    _, new, _ = protocol.validate_patch("Group", "rid", body, current)
    assert new["members"] == [KEEP]


def test_entra_member_with_null_ref_is_accepted(protocol: ScimProtocol) -> None:
    """E1 "Add Members": `"$ref": null` is an unassigned sub-attribute (RFC 7643 §2.5)."""
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Sales",
        "members": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}],
    }
    resource = protocol.validate_create("Group", "g", body).resource
    assert resource == {"displayName": "Sales", "members": [member("f648f8d5ea4e4cd38e9c")]}


def test_entra_bare_string_manager_replaces_the_whole_manager(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """E7: the bare id is the new manager; the previous manager's `$ref` must not survive."""
    current = canonical(
        protocol,
        "User",
        ENTRA_USER,
        **{ENT: {"department": "Sales", "manager": {"value": "old", "$ref": "../Users/old"}}},
    )
    body = load_sample("idp/entra/entra-patch-manager-bare-string.json")
    _, new, _ = protocol.validate_patch("User", "rid", body, current)
    assert new[ENT] == {
        "department": "Sales",
        "manager": {"value": "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"},
    }


def test_entra_bare_string_manager_in_a_resource_body(protocol: ScimProtocol) -> None:
    """E7: `manager` given as a bare id in a POST body becomes `{"value": id}` (RFC 7643 §4.3)."""
    body = {
        "schemas": [USER_SCHEMA, ENT],
        "userName": "jyoung",
        ENT: {"manager": "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"},
    }
    resource = protocol.validate_create("User", "u", body).resource
    assert resource is not None
    assert resource[ENT] == {"manager": {"value": "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"}}


def test_manager_rewrite_leaves_other_attributes_named_like_manager_alone() -> None:
    """Quirk tolerance is narrow: a tenant string attribute `accountManager` keeps its string."""
    registry = default_registry().with_extension(
        "User",
        {
            "id": "urn:example:scim:sales:1.0:User",
            "attributes": [{"name": "accountManager", "type": "string"}],
        },
    )
    protocol = ScimProtocol(registry)
    path = "urn:example:scim:sales:1.0:User:accountManager"
    body = patch_body({"op": "Add", "path": path, "value": "Dana"})
    _, new, _ = protocol.validate_patch("User", "rid", body, {"userName": "jyoung"})
    assert new["urn:example:scim:sales:1.0:User"] == {"accountManager": "Dana"}


def test_entra_misspelled_enterprise_urn_is_stored_under_the_correct_urn(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """E1 Example 2: `...:2.0User` and top-level enterprise attributes land under the real URN."""
    body = load_sample("idp/entra/entra-create-user-nulls-misspelled-urn.json")
    assert body["schemas"][1] == MISSPELLED_ENT
    body["department"] = "Tour Operations"
    body["manager"] = "26118915-6090-4610-87e4-49d8ca9f808d"
    resource = protocol.validate_create("User", "u", body).resource
    assert resource is not None
    assert resource[ENT] == {
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"},
    }
    assert MISSPELLED_ENT not in resource
    assert "department" not in resource


def test_entra_example_2_nulls_store_nothing(protocol: ScimProtocol, load_sample: Load) -> None:
    """E1 Example 2 verbatim: its explicit nulls (RFC 7643 §2.5) leave no attribute behind."""
    body = load_sample("idp/entra/entra-create-user-nulls-misspelled-urn.json")
    resource = protocol.validate_create("User", "u", body).resource
    assert resource == {
        "externalId": "jyoung",
        "userName": "jyoung@testuser.com",
        "active": True,
        "displayName": "Joy Young",
        "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": True}],
        "name": {"familyName": "Young", "givenName": "Joy"},
    }


def test_entra_misspelled_enterprise_urn_as_a_key(protocol: ScimProtocol) -> None:
    """E1 Example 2: extension data keyed by the misspelled URN is the enterprise extension."""
    body = {
        "schemas": [USER_SCHEMA, MISSPELLED_ENT],
        "userName": "jyoung",
        MISSPELLED_ENT: {"employeeNumber": "42"},
    }
    resource = protocol.validate_create("User", "u", body).resource
    assert resource is not None
    assert resource[ENT] == {"employeeNumber": "42"}


def test_both_enterprise_urn_spellings_as_keys_are_rejected(protocol: ScimProtocol) -> None:
    """An ambiguous body is refused rather than one of its two extension objects dropped."""
    body = {
        "schemas": [USER_SCHEMA, ENT],
        "userName": "jyoung",
        ENT: {"employeeNumber": "42"},
        MISSPELLED_ENT: {"costCenter": "4130"},
    }
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "u", body)


def test_top_level_enterprise_attributes_need_the_misspelled_urn(protocol: ScimProtocol) -> None:
    """Narrow tolerance: only E1 Example 2's shape is rewritten; elsewhere they are unknown."""
    body = {"schemas": [USER_SCHEMA, ENT], "userName": "jyoung", "department": "Sales"}
    with pytest.raises(InvalidValue, match="department"):
        protocol.validate_create("User", "u", body)


def test_top_level_attribute_also_under_the_urn_is_rejected(protocol: ScimProtocol) -> None:
    """E1 Example 2 shape with a conflicting value under the URN: refused, not silently merged."""
    body = {
        "schemas": [USER_SCHEMA, MISSPELLED_ENT],
        "userName": "jyoung",
        "department": "Sales",
        ENT: {"department": "Marketing"},
    }
    with pytest.raises(InvalidValue, match="department"):
        protocol.validate_create("User", "u", body)


def test_entra_legacy_adscim_group_schema_is_dropped(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """E1 "Create Group" / E2 (fixed Dec 2018): the retired ADSCIM Group schema is ignored."""
    body = load_sample("idp/entra/entra-create-group.json")
    assert ADSCIM_GROUP in body["schemas"]
    resource = protocol.validate_create("Group", "g", body).resource
    assert resource == {
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
    }


def test_other_unknown_schema_urls_are_still_rejected(protocol: ScimProtocol) -> None:
    """RFC 7643 §3: `schemas` holds only the resource type's schemas; ADSCIM is the exception."""
    body = {
        "schemas": [GROUP_SCHEMA, ADSCIM_GROUP.replace("/Group", "/User")],
        "displayName": "Sales",
    }
    with pytest.raises(InvalidValue):
        protocol.validate_create("Group", "g", body)


# --- Entra aadOptscim062020 (E2) ---------------------------------------------------------------


def test_entra_no_path_replace_with_dotted_and_urn_keys(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """E2 "replace multiple attributes, with feature flag": dotted and URN keys are paths."""
    current = canonical(protocol, "User", ENTRA_USER)
    body = load_sample(
        "idp/entra-aadoptscim062020/entra62020-patch-user-noPath-replace-dotted-keys.json"
    )
    command, new, _ = protocol.validate_patch("User", "rid", body, current)
    assert new["name"]["givenName"] == "Kkom"
    assert new["name"]["familyName"] == "Unua"
    assert new["name"]["formatted"] == current["name"]["formatted"]  # untouched sub-attribute
    assert new[ENT] == {"employeeNumber": "Aklq"}
    assert "name.givenName" not in new
    assert [op["path"] for op in command.operations] == [
        'emails[type eq "work"].value',
        "displayName",
        "name.givenName",
        "name.familyName",
        f"{ENT}:employeeNumber",
    ]


# --- Okta (O1) ---------------------------------------------------------------------------------


def test_okta_path_less_deactivate(protocol: ScimProtocol, load_sample: Load) -> None:
    """O1 "Update a specific User (PATCH)": `{"active": false}` without a path disables."""
    current = canonical(protocol, "User", OKTA_USER)
    command, new, _ = protocol.validate_patch(
        "User", "rid", load_sample("idp/okta/okta-patch-deactivate.json"), current
    )
    assert new["active"] is False
    assert command.operations == ({"op": "replace", "path": "active", "value": False},)
    assert command.deprovisions


def test_okta_group_rename_ignores_the_id(protocol: ScimProtocol, load_sample: Load) -> None:
    """O1 "Update a specific Group name": `{id, displayName}` renames; `id` is not stored."""
    current = canonical(protocol, "Group", OKTA_GROUP, displayName="Old name")
    body = load_sample("idp/okta/okta-patch-group-rename.json")
    command, new, _ = protocol.validate_patch("Group", "abf4dd94", body, current)
    assert new == {"displayName": "Test SCIMv2"}
    assert command.operations == ({"op": "replace", "path": "displayName", "value": "Test SCIMv2"},)


def test_okta_password_sync_never_journals_the_cleartext(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """O1 "Syncing the user password": the PATCH carries only a hash into the command."""
    current = canonical(protocol, "User", OKTA_USER)
    command, new, _ = protocol.validate_patch(
        "User", "rid", load_sample("idp/okta/okta-patch-password.json"), current
    )
    assert "2nx161or" not in json.dumps(command.to_json())
    assert verify_password("2nx161or", new["password"])


# --- narrow tolerance --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "Yes", "no", 1, 0, "1", "enabled"])
def test_active_tolerance_is_narrow_in_patch(protocol: ScimProtocol, value: Any) -> None:
    """Only E2's "True"/"False" strings are read as booleans; "yes", 1 etc. stay invalid."""
    current = canonical(protocol, "User", ENTRA_USER)
    with_path = patch_body({"op": "Replace", "path": "active", "value": value})
    path_less = patch_body({"op": "replace", "value": {"active": value}})
    for body in (with_path, path_less):
        with pytest.raises(InvalidValue):
            protocol.validate_patch("User", "rid", body, current)


@pytest.mark.parametrize("value", ["yes", "Yes", 1])
def test_active_tolerance_is_narrow_in_create(protocol: ScimProtocol, value: Any) -> None:
    """Only E2's "True"/"False" strings are read as booleans in a POST body too."""
    body = {"schemas": [USER_SCHEMA], "userName": "jyoung", "active": value}
    with pytest.raises(InvalidValue):
        protocol.validate_create("User", "u", body)


@pytest.mark.parametrize("op", ["Move", "move", "Copy", "Test", "", None, 1])
def test_only_add_remove_replace_ops_are_accepted(protocol: ScimProtocol, op: Any) -> None:
    """RFC 7644 §3.5.2: op is add, remove or replace (any case, E1); RFC 6902 "move" is not."""
    body = patch_body({"op": op, "path": "nickName", "value": "Babs"})
    with pytest.raises(InvalidSyntax):
        protocol.validate_patch("User", "rid", body, {"userName": "jyoung"})


@pytest.mark.parametrize(
    "value",
    [
        [{"display": "Babs Jensen"}],
        [{"$ref": None}],
        [{"value": "u1091"}, {"display": "Babs Jensen"}],
        [{"value": 1091}],
        [{"VALUE": "u1091"}],
        ["u1091"],
        {"value": "u1091"},
        "u1091",
    ],
    ids=[
        "display-only",
        "ref-only",
        "mixed",
        "number",
        "other-case",
        "strings",
        "object",
        "string",
    ],
)
def test_remove_with_a_value_that_is_not_the_entra_shape_is_rejected(
    protocol: ScimProtocol, value: Any
) -> None:
    """ARCHITECTURE.md: a remove value other than E1's member array is refused, not 'remove all'."""
    current = canonical(protocol, "Group", ENTRA_GROUP, members=[KEEP, member("u1091")])
    body = patch_body({"op": "Remove", "path": "members", "value": value})
    with pytest.raises(InvalidValue):
        protocol.validate_patch("Group", "rid", body, current)


def test_remove_members_without_value_still_removes_all(protocol: ScimProtocol) -> None:
    """RFC 7644 §3.5.2.2: `remove` of `members` with no value (and no filter) empties the group."""
    current = {"displayName": "g", "members": [KEEP, member("u1091")]}
    body = patch_body({"op": "remove", "path": "members"})
    _, new, _ = protocol.validate_patch("Group", "rid", body, current)
    assert new == {"displayName": "g"}
