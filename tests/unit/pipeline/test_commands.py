"""Canonical commands: the journal's JSON form of an accepted write, and `deprovisions`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.scim.protocol import ScimProtocol
from tests.conftest import canonical, patch_body

Load = Callable[[str], Any]

OKTA_USER = "idp/okta/okta-create-user.json"


def commands_of_every_kind(protocol: ScimProtocol, load: Load) -> list[Command]:
    """One real command per kind, produced by the protocol from the sample corpus."""
    current = canonical(protocol, "User", OKTA_USER)
    create = protocol.validate_create("User", "u1", load(OKTA_USER))
    replace = protocol.validate_replace(
        "User", "u1", load("idp/okta/okta-put-user-full-object.json"), current
    )
    patch, _, _ = protocol.validate_patch(
        "User", "u1", load("idp/entra/entra-patch-user-multi-op.json"), current
    )
    group_patch, _, _ = protocol.validate_patch(
        "Group",
        "g1",
        load("idp/entra/entra-patch-remove-members-value-array.json"),
        {"displayName": "g", "members": [{"value": "u1091"}]},
    )
    delete = protocol.delete("Group", "g1")
    return [create, replace, patch, group_patch, delete]


def round_trip(command: Command) -> Command:
    """Through JSON text, as the journal stores it."""
    return Command.from_json(json.loads(json.dumps(command.to_json())))


def test_every_kind_is_covered(protocol: ScimProtocol, load_sample: Load) -> None:
    """The round-trip corpus holds at least one command of every CommandKind."""
    kinds = {command.kind for command in commands_of_every_kind(protocol, load_sample)}
    assert kinds == set(CommandKind)


KIND_IDS = ["create", "replace", "patch", "patch-group", "delete"]


@pytest.mark.parametrize("index", range(len(KIND_IDS)), ids=KIND_IDS)
def test_to_json_from_json_round_trip(
    protocol: ScimProtocol, load_sample: Load, index: int
) -> None:
    """A command survives the journal: from_json(to_json(c)) == c, through JSON text."""
    command = commands_of_every_kind(protocol, load_sample)[index]
    again = round_trip(command)
    assert again == command
    assert again.kind is command.kind
    assert again.to_json() == command.to_json()


def test_to_json_shape_per_kind(protocol: ScimProtocol, load_sample: Load) -> None:
    """CREATE/REPLACE carry the resource, PATCH the operations, DELETE neither."""
    create, replace, patch, _, delete = commands_of_every_kind(protocol, load_sample)
    assert create.to_json() == {
        "kind": "create", "resourceType": "User", "id": "u1", "resource": create.resource,
    }
    assert set(replace.to_json()) == {"kind", "resourceType", "id", "resource"}
    assert set(patch.to_json()) == {"kind", "resourceType", "id", "operations"}
    assert patch.to_json()["operations"][0] == {
        "op": "replace", "path": "displayName", "value": "Pvlo",
    }
    assert delete.to_json() == {"kind": "delete", "resourceType": "Group", "id": "g1"}


def test_json_is_plain_data(protocol: ScimProtocol, load_sample: Load) -> None:
    """The JSON form holds only JSON types (no enums, tuples or objects), so it can be stored."""
    for command in commands_of_every_kind(protocol, load_sample):
        data = command.to_json()
        assert json.loads(json.dumps(data)) == data
        assert type(data["kind"]) is str


def test_from_json_of_a_minimal_record() -> None:
    """A DELETE record has no resource and no operations."""
    command = Command.from_json({"kind": "delete", "resourceType": "User", "id": "u1"})
    assert command == Command(CommandKind.DELETE, "User", "u1")
    assert command.resource is None
    assert command.operations == ()


# --- deprovisions ----------------------------------------------------------------------------


def test_delete_deprovisions(protocol: ScimProtocol) -> None:
    """RFC 7644 §3.6: DELETE takes access away."""
    assert protocol.delete("User", "u1").deprovisions
    assert round_trip(protocol.delete("User", "u1")).deprovisions


def test_replace_with_active_false_deprovisions(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """O1 (AIW apps): deactivation arrives as a PUT with `active: false`."""
    current = canonical(protocol, "User", OKTA_USER)
    command = protocol.validate_replace(
        "User", "u1", load_sample("idp/okta/okta-put-deactivate.json"), current
    )
    assert command.deprovisions
    assert round_trip(command).deprovisions


def test_replace_with_active_true_does_not_deprovision(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """O1 "Update the User": a profile PUT with `active: true` grants nothing away."""
    current = canonical(protocol, "User", OKTA_USER)
    body = load_sample("idp/okta/okta-put-user-full-object.json")
    assert not protocol.validate_replace("User", "u1", body, current).deprovisions


@pytest.mark.parametrize(
    "sample",
    [
        "idp/okta/okta-patch-deactivate.json",
        "idp/entra/entra-patch-disable.json",
        "idp/entra/entra-patch-disable-boolean.json",
        "idp/entra-aadoptscim062020/entra62020-patch-disable.json",
        "idp/google/google-patch-deactivate.json",
        "idp/onelogin/onelogin-patch-deactivate.json",
    ],
)
def test_patch_replace_active_false_deprovisions(
    protocol: ScimProtocol, load_sample: Load, sample: str
) -> None:
    """O1/E2/E3/G1: every IdP's disable PATCH (path, path-less, "False" string) deprovisions."""
    current = canonical(protocol, "User", OKTA_USER)
    command, _, _ = protocol.validate_patch("User", "u1", load_sample(sample), current)
    assert command.deprovisions
    assert round_trip(command).deprovisions


@pytest.mark.parametrize(
    "body",
    [
        patch_body({"op": "replace", "path": "active", "value": True}),
        patch_body({"op": "Replace", "path": "active", "value": "True"}),
        patch_body({"op": "replace", "value": {"active": True}}),
        patch_body({"op": "replace", "path": "nickName", "value": "Babs"}),
    ],
    ids=["enable", "entra-enable", "okta-reactivate", "other-attribute"],
)
def test_other_patches_do_not_deprovision(protocol: ScimProtocol, body: dict[str, Any]) -> None:
    """Only `active` set to false (or DELETE) takes access away."""
    current = canonical(protocol, "User", OKTA_USER, active=False)
    command, _, _ = protocol.validate_patch("User", "u1", body, current)
    assert not command.deprovisions


def test_deactivation_inside_a_longer_patch_deprovisions(protocol: ScimProtocol) -> None:
    """E1: one PATCH may carry several operations; any `active` false among them counts."""
    body = patch_body(
        {"op": "Replace", "path": "displayName", "value": "Babs"},
        {"op": "Replace", "path": "active", "value": "False"},
    )
    command, _, _ = protocol.validate_patch(
        "User", "u1", body, canonical(protocol, "User", OKTA_USER)
    )
    assert command.deprovisions


def test_create_and_group_commands_do_not_deprovision(
    protocol: ScimProtocol, load_sample: Load
) -> None:
    """Creating an active user or patching group membership takes no access away."""
    assert not protocol.validate_create("User", "u1", load_sample(OKTA_USER)).deprovisions
    *_, group_patch, _ = commands_of_every_kind(protocol, load_sample)
    assert not group_patch.deprovisions
