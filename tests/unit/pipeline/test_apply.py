"""The pure apply: a resource's pending entries in, its final state, plan and effects out.

No database: the applied state, the known member ids and the member loader are plain values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scimflow.pipeline.apply import Outcome, apply_resource, project_members
from scimflow.pipeline.commands import Command, Entry
from scimflow.pipeline.scim.protocol import ScimProtocol
from tests.conftest import make_protocol, patch_body

PROTOCOL: ScimProtocol = make_protocol()
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
NOW = datetime(2026, 12, 4, tzinfo=UTC)


def entry(seq: int, command: Command) -> Entry:
    return Entry(seq, "acme", command.resource_id, command, attempts=0, created_at=NOW)


def create_user(user_id: str, user_name: str, **attributes: Any) -> Command:
    body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
    return PROTOCOL.validate_create("User", user_id, body)


def create_group(group_id: str, *member_ids: str) -> Command:
    body = {"schemas": [GROUP_SCHEMA], "displayName": f"group {group_id}",
            "members": [{"value": member_id} for member_id in member_ids]}
    return PROTOCOL.validate_create("Group", group_id, body)


def patch(
    type_name: str, resource_id: str, current: dict[str, Any], *ops: dict[str, Any]
) -> Command:
    command, _, _ = PROTOCOL.validate_patch(type_name, resource_id, patch_body(*ops), current)
    return command


def group_state(group_id: str) -> dict[str, Any]:
    resource = create_group(group_id).resource
    assert resource is not None
    return {k: v for k, v in resource.items() if k != "members"}


def no_member_list() -> list[dict[str, Any]]:
    raise AssertionError("a set-based change must not load the member list")


def apply(
    resource_type: str,
    current: dict[str, Any] | None,
    *entries: Entry,
    version: int = 0,
    known: frozenset[str] = frozenset(),
    members: Any = no_member_list,
) -> Outcome:
    return apply_resource(PROTOCOL, resource_type, current, list(entries), version=version,
                          known_ids=known, load_members=members)


def test_entries_apply_in_order_and_each_counts_one_version() -> None:
    created = create_user("u1", "ann")
    renamed = patch("User", "u1", created.resource or {},
                    {"op": "replace", "path": "userName", "value": "anna"})
    outcome = apply("User", None, entry(1, created), entry(2, renamed))
    assert outcome.applied == [1, 2]
    assert outcome.state is not None and outcome.state["userName"] == "anna"
    assert outcome.version == 2
    assert [(e.type, e.version, e.seq) for e in outcome.events] == [
        ("user.created", 1, 1), ("user.updated", 2, 2)
    ]
    created_event, renamed_event = outcome.events
    assert created_event.data is not None and created_event.data["userName"] == "ann"
    assert renamed_event.changed_attributes == ("userName",)
    assert renamed_event.identity == {"externalId": None, "userName": "anna"}


def test_the_version_continues_from_the_prior_one() -> None:
    current = create_user("u1", "ann").resource
    title = patch("User", "u1", current or {}, {"op": "add", "path": "title", "value": "CTO"})
    outcome = apply("User", current, entry(9, title), version=4)
    assert (outcome.previous_version, outcome.version, outcome.existed) == (4, 5, True)


def test_an_entry_waiting_for_a_member_blocks_the_entries_behind_it() -> None:
    first = create_group("g1", "u1")
    current = group_state("g1")
    add_u2 = patch("Group", "g1", current,
                   {"op": "add", "path": "members", "value": [{"value": "u2"}]})
    rename = patch("Group", "g1", current,
                   {"op": "replace", "path": "displayName", "value": "renamed"})
    outcome = apply("Group", None, entry(1, first), entry(2, add_u2), entry(3, rename),
                    known=frozenset({"u1"}))
    assert outcome.applied == [1]
    assert outcome.blocked is not None
    assert (outcome.blocked.entry.seq, outcome.blocked.waiting_for) == (2, frozenset({"u2"}))
    assert not outcome.blocked.permanent
    assert outcome.state is not None and outcome.state["displayName"] == "group g1"


def test_a_command_that_cannot_apply_any_more_is_blocked_for_good() -> None:
    with_email = create_user("u1", "ann", emails=[{"value": "a@example.com", "type": "work"}])
    set_work = patch("User", "u1", with_email.resource or {},
                     {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@x.org"})
    # Applied to a state that no longer holds that email, the replace finds no target.
    outcome = apply("User", create_user("u1", "ann").resource, entry(5, set_work), version=1)
    assert outcome.blocked is not None and outcome.blocked.permanent
    assert outcome.applied == [] and outcome.version == 1


def test_whole_list_member_changes_are_planned_without_loading_members() -> None:
    current = group_state("g1")
    add = patch("Group", "g1", current,
                {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]})
    remove = patch("Group", "g1", current,
                   {"op": "remove", "path": 'members[value eq "u1"]'})
    outcome = apply("Group", current, entry(1, add), entry(2, remove), version=3,
                    known=frozenset({"u1", "u2"}))
    plan = outcome.members
    assert plan is not None and not plan.reset
    # u1 is taken out of the adds, and removed in case it was applied before.
    assert set(plan.adds) == {"u2"} and plan.removes == {"u1"}
    assert outcome.applied == [1, 2]


def test_removing_members_by_id_is_a_set_operation() -> None:
    current = group_state("g1")
    remove = patch("Group", "g1", current,
                   {"op": "remove", "path": 'members[value eq "u1" or value eq "u3"]'})
    outcome = apply("Group", current, entry(1, remove), version=1)
    assert outcome.members is not None and outcome.members.removes == {"u1", "u3"}


def test_a_replace_resets_the_member_list() -> None:
    current = group_state("g1")
    replace = patch("Group", "g1", current,
                    {"op": "replace", "path": "members", "value": [{"value": "u9"}]})
    outcome = apply("Group", current, entry(1, replace), version=1, known=frozenset({"u9"}))
    plan = outcome.members
    assert plan is not None and plan.reset and set(plan.adds) == {"u9"}


def test_a_sub_attribute_change_applies_to_the_loaded_member_list() -> None:
    current = group_state("g1")
    loaded = [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]
    display = patch("Group", "g1", {**current, "members": loaded},
                    {"op": "replace", "path": 'members[value eq "u2"].display', "value": "Bo"})
    calls: list[int] = []

    def load() -> list[dict[str, Any]]:
        calls.append(1)
        return [dict(member) for member in loaded]

    outcome = apply("Group", current, entry(1, display), version=1,
                    known=frozenset({"u1", "u2"}), members=load)
    plan = outcome.members
    assert calls == [1]
    assert plan is not None and plan.reset
    assert plan.adds["u2"].get("display") == "Bo" and "u1" in plan.adds


def test_deactivating_a_user_deprovisions_it() -> None:
    current = create_user("u1", "ann", active=True).resource or {}
    deactivate = patch("User", "u1", current, {"op": "replace", "path": "active", "value": False})
    outcome = apply("User", current, entry(1, deactivate), version=1)
    assert outcome.deprovisioned
    [event] = outcome.events
    assert (event.type, event.changed_attributes, event.version) == (
        "user.deprovisioned", ("active",), 2
    )
    assert event.data is not None and event.data["active"] is False


def test_reactivating_a_user_says_so() -> None:
    current = create_user("u1", "ann", active=False).resource or {}
    activate = patch("User", "u1", current, {"op": "replace", "path": "active", "value": True})
    outcome = apply("User", current, entry(1, activate), version=1)
    assert [event.type for event in outcome.events] == ["user.reactivated"]
    assert not outcome.deprovisioned


def test_a_change_that_changes_nothing_says_nothing() -> None:
    current = create_user("u1", "ann", title="CTO").resource or {}
    same = patch("User", "u1", current, {"op": "replace", "path": "title", "value": "CTO"})
    outcome = apply("User", current, entry(1, same), version=1)
    assert outcome.applied == [1] and outcome.events == []


def test_an_event_never_carries_a_password() -> None:
    created = create_user("u1", "ann", password="s3cret-Passw0rd")
    [event] = apply("User", None, entry(1, created)).events
    assert event.data is not None and "password" not in event.data
    assert event.data["id"] == "u1" and "schemas" in event.data


def test_a_members_only_change_leaves_member_events_to_the_statements() -> None:
    current = group_state("g1")
    add = patch("Group", "g1", current,
                {"op": "add", "path": "members", "value": [{"value": "u1"}]})
    outcome = apply("Group", current, entry(1, add), version=1,
                    known=frozenset({"u1"}))
    assert outcome.applied == [1] and outcome.events == []
    assert outcome.members is not None and "u1" in outcome.members.adds


def test_deleting_a_user_deprovisions_it_and_leaves_no_state() -> None:
    current = create_user("u1", "ann").resource
    outcome = apply("User", current, entry(1, PROTOCOL.delete("User", "u1")), version=2)
    assert outcome.state is None and outcome.deprovisioned and outcome.changed


def test_a_prepared_command_is_applied_and_kept_for_the_journal() -> None:
    created = create_user("u1", "ann")
    prepared = create_user("u1", "ann", title="prepared")
    outcome = apply_resource(PROTOCOL, "User", None, [entry(1, created)], version=0,
                             known_ids=(), load_members=no_member_list,
                             prepare=lambda command: prepared)
    assert outcome.state is not None and outcome.state["title"] == "prepared"
    assert outcome.prepared == {1: prepared}


def test_projection_applies_pending_member_changes_to_the_applied_members() -> None:
    group = group_state("g1")
    applied = [{"value": "u1", "type": "User"}]
    add = patch("Group", "g1", group, {"op": "add", "path": "members", "value": [{"value": "u2"}]})
    remove = patch("Group", "g1", group, {"op": "remove", "path": 'members[value eq "u1"]'})
    projected = project_members(PROTOCOL, group, applied, [add, remove])
    assert [member["value"] for member in projected] == ["u2"]
    assert project_members(PROTOCOL, group, applied, [add, PROTOCOL.delete("Group", "g1")]) == []


def test_member_refs_name_what_a_command_adds_never_what_it_removes() -> None:
    group = group_state("g1")
    display = patch("Group", "g1", {**group, "members": [{"value": "u7"}]},
                    {"op": "add", "path": 'members[value eq "u7"].display', "value": "Seven"})
    remove = patch("Group", "g1", group, {"op": "remove", "path": 'members[value eq "u1"]'})
    assert create_group("g1", "u1", "u2").member_refs() == {"u1", "u2"}
    assert display.member_refs() == {"u7"}
    assert remove.member_refs() == frozenset()
    assert remove.touches_members and not create_user("u1", "ann").touches_members
