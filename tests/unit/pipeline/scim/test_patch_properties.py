"""Properties of PATCH (RFC 7644 §3.5.2): atomic, pure, idempotent on replay, and the API's
projected state is what the worker reaches."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scimflow.pipeline.commands import Command
from scimflow.pipeline.errors import Mutability, NoTarget, ScimError
from scimflow.pipeline.scim.patch import normalise_patch
from scimflow.pipeline.scim.patch_apply import apply_operations
from scimflow.pipeline.scim.registry import GROUP, USER
from scimflow.pipeline.scim.schema import ResourceType
from tests.conftest import FAST_HASHER, canonical, make_protocol, patch_body, sample_paths
from tests.unit.pipeline.scim.test_patch_add import run_patch

PROTOCOL = make_protocol()
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

Resource = dict[str, Any]
Operation = dict[str, Any]
LoadSample = Callable[[str], Any]


# --- Multi-operation atomicity ---------------------------------------------------------------


def test_failing_third_operation_leaves_resource_unchanged(bjensen: Resource) -> None:
    """RFC 7644 §3.5.2: "If a single operation encounters an error condition, the original
    SCIM resource MUST be restored"; the first two operations leave no trace."""
    before = copy.deepcopy(bjensen)
    payload = patch_body(
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "remove", "path": "emails"},
        {"op": "replace", "path": 'addresses[type eq "other"].locality', "value": "x"},
        {"op": "add", "path": "nickName", "value": "B"},
    )
    with pytest.raises(NoTarget):
        PROTOCOL.validate_patch("User", "id", payload, bjensen)
    assert bjensen == before
    operations = normalise_patch(payload, USER, FAST_HASHER)
    with pytest.raises(NoTarget):
        apply_operations(bjensen, operations, USER)
    assert bjensen == before


def test_failing_required_check_after_all_operations_is_atomic(tour_guides: Resource) -> None:
    """RFC 7644 §3.5.2.2: a PATCH that leaves a required attribute unassigned fails as a whole,
    even though every single operation applied."""
    before = copy.deepcopy(tour_guides)
    payload = patch_body(
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": "displayName"},
    )
    with pytest.raises(Mutability):
        PROTOCOL.validate_patch("Group", "id", payload, tour_guides)
    assert tour_guides == before


def test_worker_replay_on_changed_state_fails_atomically(bjensen: Resource) -> None:
    """RFC 7644 §3.5.2: a command replayed on a state where it no longer applies raises and
    leaves that state alone."""
    payload = patch_body(
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": 'emails[type eq "home"].display', "value": "Home"},
    )
    command, _, _ = PROTOCOL.validate_patch("User", "id", payload, bjensen)
    moved_on = {**bjensen, "emails": [bjensen["emails"][0]]}
    before = copy.deepcopy(moved_on)
    with pytest.raises(NoTarget):
        PROTOCOL.apply(command, moved_on)
    assert moved_on == before


# --- API and worker agree on every PATCH sample ----------------------------------------------

PATCH_SAMPLES = [
    path
    for pattern in ("rfc7644/rfc7644-3.5.2*.json", "idp/*/*patch*.json")
    for path in sample_paths(pattern)
]


def base_resource(path: str) -> tuple[str, Resource]:
    if "member" in path or "group" in path.lower():
        return "Group", canonical(PROTOCOL, "Group", "rfc7643/rfc7643-8.4-group.json")
    return "User", canonical(PROTOCOL, "User", "rfc7643/rfc7643-8.3-enterprise-user.json")


def test_patch_samples_are_found() -> None:
    """RFC 7644 §3.5.2: the corpus has PATCH samples from the RFC and from the IdPs."""
    assert len(PATCH_SAMPLES) >= 30


@pytest.mark.parametrize("path", PATCH_SAMPLES)
def test_worker_reaches_the_state_the_api_projected(load_sample: LoadSample, path: str) -> None:
    """RFC 7644 §3.5.2: protocol.apply(command, current) equals validate_patch's projected state
    (API and worker agree), and replaying the command on that state changes nothing."""
    type_name, current = base_resource(path)
    before = copy.deepcopy(current)
    command, new, changed = PROTOCOL.validate_patch(type_name, "id", load_sample(path), current)
    journaled = Command.from_json(json.loads(json.dumps(command.to_json())))
    assert PROTOCOL.apply(journaled, current) == (new, changed)
    assert PROTOCOL.apply(journaled, new) == (new, False)
    assert current == before


# --- Generated resources ---------------------------------------------------------------------

TYPES = ["work", "home", "other"]
WORDS = st.sampled_from(["Babs", "Jensen", "Ms.", "Tour Guide", "Zoë"])
MEMBER_IDS = ["m1", "m2", "m3", "m4"]


def single_primary(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first primary; RFC 7643 §2.4 allows one."""
    out, seen = [], False
    for item in items:
        if item.get("primary") is True:
            item = {**item, "primary": False} if seen else item  # noqa: PLW2901
            seen = True
        out.append(item)
    return out


def plural_values(values: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    # Mostly typed, so that value filters on `type` select something.
    item = st.fixed_dictionaries(
        {"value": st.sampled_from(values), "type": st.sampled_from([*TYPES, None])},
        optional={"display": WORDS, "primary": st.booleans()},
    ).map(lambda item: {k: v for k, v in item.items() if v is not None})
    return st.lists(item, min_size=1, max_size=3).map(single_primary)


EMAILS = plural_values(["a@x", "b@x", "c@x"])
PHONES = plural_values(["555-1", "555-2", "555-3"])
NAMES = st.fixed_dictionaries(
    {}, optional={"givenName": WORDS, "familyName": WORDS, "middleName": WORDS}
)
USER_BODIES = st.fixed_dictionaries(
    {
        "schemas": st.just(["urn:ietf:params:scim:schemas:core:2.0:User"]),
        "userName": WORDS,
        "emails": EMAILS,
    },
    optional={
        "phoneNumbers": PHONES,
        "name": NAMES,
        "title": WORDS,
        "active": st.booleans(),
        ENTERPRISE: st.fixed_dictionaries({}, optional={"department": WORDS}),
    },
)
MEMBERS = st.lists(
    st.fixed_dictionaries({"value": st.sampled_from(MEMBER_IDS)}, optional={"display": WORDS}),
    max_size=4,
)
GROUP_BODIES = st.fixed_dictionaries(
    {"schemas": st.just(["urn:ietf:params:scim:schemas:core:2.0:Group"]), "displayName": WORDS},
    optional={"members": MEMBERS},
)


def created(type_name: str, body: dict[str, Any]) -> Resource:
    resource = PROTOCOL.validate_create(type_name, "id", body).resource
    assert resource is not None
    return resource


def users() -> st.SearchStrategy[Resource]:
    return USER_BODIES.map(lambda body: created("User", body))


def groups() -> st.SearchStrategy[Resource]:
    return GROUP_BODIES.map(lambda body: created("Group", body))


# --- Generated operations that are valid and idempotent one attribute at a time --------------


def any_of(choices: list[st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Like st.one_of, but picks a branch uniformly (one_of favours its first branch)."""
    return st.sampled_from(choices).flatmap(lambda chosen: chosen)


def single_ops(name: str, current: Any, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    choices = [
        st.builds(lambda v: {"op": "replace", "path": name, "value": v}, values),
        st.just({"op": "replace", "path": name, "value": None}),
        st.just({"op": "remove", "path": name}),
    ]
    if current is not None:
        choices.append(st.just({"op": "add", "path": name, "value": current}))
    return any_of(choices)


def name_ops(current: Any) -> st.SearchStrategy[Operation]:
    subs = st.sampled_from(["givenName", "familyName", "middleName"])
    choices = [
        single_ops("name", current, NAMES),
        st.builds(lambda s, v: {"op": "replace", "path": f"name.{s}", "value": v}, subs, WORDS),
        st.builds(lambda s: {"op": "remove", "path": f"name.{s}"}, subs),
        st.builds(lambda s: {"op": "replace", "path": "name", "value": {s: None}}, subs),
    ]
    return any_of(choices)


def plural_ops(
    name: str, items: list[dict[str, Any]], values: st.SearchStrategy[list[dict[str, Any]]]
) -> st.SearchStrategy[Operation]:
    """replace / remove / add-of-existing on a multi-valued attribute, never changing the
    sub-attribute a filter selects on (that would make the replay select nothing)."""
    present = sorted({item["type"] for item in items if "type" in item})
    any_type = st.sampled_from(TYPES)
    # Hypothesis favours the first choices, so the state-dependent ones come first.
    choices: list[st.SearchStrategy[Operation]] = []
    if present:
        selected = st.sampled_from(present)
        sub_values = st.one_of(
            st.tuples(st.just("display"), WORDS),
            st.tuples(st.just("primary"), st.booleans()),
            st.tuples(st.just("value"), st.sampled_from(["a@x", "z@x"])),
        )
        choices += [
            st.builds(
                lambda t, sv: {
                    "op": "replace",
                    "path": f'{name}[type eq "{t}"].{sv[0]}',
                    "value": sv[1],
                },
                selected,
                sub_values,
            ),
            st.builds(
                lambda t, v, p: {
                    "op": "replace",
                    "path": f'{name}[type eq "{t}"]',
                    "value": {"value": v, "type": t, "primary": p},
                },
                selected,
                st.sampled_from(["a@x", "q@x"]),
                st.booleans(),
            ),
        ]
    # Entra's add through an `eq` filter creates the value when nothing matches (names in a
    # filter are case-insensitive).
    choices.append(
        st.builds(
            lambda t, v: {"op": "add", "path": f'{name}[TYPE eq "{t}"].display', "value": v},
            any_type,
            WORDS,
        )
    )
    if items:
        existing = st.lists(st.sampled_from(items), min_size=1, max_size=2, unique_by=repr)
        choices.append(st.builds(lambda v: {"op": "add", "path": name, "value": v}, existing))
    choices += [
        st.builds(lambda v: {"op": "replace", "path": name, "value": v}, values),
        st.just({"op": "remove", "path": name}),
        st.builds(lambda t: {"op": "remove", "path": f'{name}[type eq "{t}"]'}, any_type),
        st.builds(lambda t: {"op": "remove", "path": f'{name}[type eq "{t}"].display'}, any_type),
        st.builds(lambda t: {"op": "remove", "path": f'{name}[type eq "{t}"].type'}, any_type),
    ]
    return any_of(choices)


@st.composite
def idempotent_user_patches(draw: st.DrawFn) -> tuple[Resource, list[Operation]]:
    user = draw(users())
    targets = draw(
        st.lists(
            st.sampled_from(["title", "active", "name", "emails", "phoneNumbers", "department"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    ops: list[Operation] = []
    for target in targets:
        if target == "name":
            ops.append(draw(name_ops(user.get("name"))))
        elif target == "title":
            ops.append(draw(single_ops("title", user.get("title"), WORDS)))
        elif target == "active":
            ops.append(draw(single_ops("active", user.get("active"), st.booleans())))
        elif target == "department":
            current = user.get(ENTERPRISE, {}).get("department")
            ops.append(draw(single_ops(f"{ENTERPRISE}:department", current, WORDS)))
        else:
            ops.append(
                draw(
                    plural_ops(
                        target, user.get(target, []), EMAILS if target == "emails" else PHONES
                    )
                )
            )
    return user, ops


@st.composite
def idempotent_group_patches(draw: st.DrawFn) -> tuple[Resource, list[Operation]]:
    group = draw(groups())
    members = group.get("members", [])
    member_ops = [
        st.builds(lambda v: {"op": "replace", "path": "members", "value": v}, MEMBERS),
        st.just({"op": "remove", "path": "members"}),
        st.builds(
            lambda m: {"op": "remove", "path": f'members[value eq "{m}"]'},
            st.sampled_from(MEMBER_IDS),
        ),
        # Members are identified by their immutable value: re-adding one, with any display,
        # is adding an existing value.
        st.builds(lambda v: {"op": "add", "path": "members", "value": v}, MEMBERS),
    ]
    ops = [draw(any_of(member_ops))]
    if draw(st.booleans()):
        ops.append({"op": "replace", "path": "displayName", "value": draw(WORDS)})
    if members and draw(st.booleans()):
        member = draw(st.sampled_from(members))
        ops.append({"op": "add", "path": "members", "value": [member]})
    draw(st.randoms()).shuffle(ops)
    return group, ops


@SETTINGS
@given(
    st.one_of(
        idempotent_user_patches().map(lambda case: ("User", *case)),
        idempotent_group_patches().map(lambda case: ("Group", *case)),
    )
)
def test_replaying_a_patch_changes_nothing(case: tuple[str, Resource, list[Operation]]) -> None:
    """RFC 7644 §3.5.2: replace, remove and add-of-existing-values PATCHes are idempotent, so a
    redelivered command changes nothing (changed False, equal resource)."""
    type_name, current, ops = case
    payload = patch_body(*ops)
    new, _ = run_patch(PROTOCOL, type_name, current, payload)
    assert run_patch(PROTOCOL, type_name, new, payload) == (new, False)
    command, _, _ = PROTOCOL.validate_patch(type_name, "id", payload, current)
    assert PROTOCOL.apply(command, new) == (new, False)


# --- Atomicity and purity with a failing operation -------------------------------------------


def invalid_ops(type_name: str, resource: Resource) -> st.SearchStrategy[Operation]:
    """Operations that pass normalisation but always fail when applied."""
    if type_name == "User":
        return st.sampled_from(
            [
                {"op": "remove", "path": "userName"},
                {"op": "replace", "path": "userName", "value": None},
                {"op": "replace", "path": 'emails[type eq "nowhere"].value', "value": "x@y"},
                {"op": "replace", "path": 'addresses[type eq "work"].locality', "value": "x"},
            ]
        )
    choices = [{"op": "replace", "path": 'members[value eq "nobody"].display', "value": "x"}]
    choices += [
        {"op": "replace", "path": f'members[value eq "{m["value"]}"].value', "value": "changed"}
        for m in resource.get("members", [])
    ]
    return st.sampled_from(choices)


@st.composite
def patches_with_one_failure(draw: st.DrawFn) -> tuple[ResourceType, Resource, list[Operation]]:
    if draw(st.booleans()):
        resource, ops = draw(idempotent_user_patches())
        type_name, resource_type = "User", USER
    else:
        resource, ops = draw(idempotent_group_patches())
        ops = [op for op in ops if op.get("path") != "displayName"]
        type_name, resource_type = "Group", GROUP
    position = draw(st.integers(0, len(ops)))
    ops.insert(position, draw(invalid_ops(type_name, resource)))
    return resource_type, resource, ops


@SETTINGS
@given(patches_with_one_failure())
def test_one_invalid_operation_fails_the_whole_patch(
    case: tuple[ResourceType, Resource, list[Operation]],
) -> None:
    """RFC 7644 §3.5.2: operations are applied all or none; on failure the input is unchanged."""
    resource_type, resource, ops = case
    operations = normalise_patch(patch_body(*ops), resource_type, FAST_HASHER)
    before, ops_before = copy.deepcopy(resource), copy.deepcopy(operations)
    with pytest.raises(ScimError) as caught:
        apply_operations(resource, operations, resource_type)
    assert caught.value.status == 400
    assert resource == before
    assert operations == ops_before


@SETTINGS
@given(
    st.one_of(
        idempotent_user_patches().map(lambda case: (USER, *case)),
        idempotent_group_patches().map(lambda case: (GROUP, *case)),
        patches_with_one_failure(),
    )
)
def test_apply_never_mutates_its_input(
    case: tuple[ResourceType, Resource, list[Operation]],
) -> None:
    """RFC 7644 §3.5.2: applying is pure; neither the resource nor the operations change,
    whether the PATCH succeeds or fails."""
    resource_type, resource, ops = case
    operations = normalise_patch(patch_body(*ops), resource_type, FAST_HASHER)
    before, ops_before = copy.deepcopy(resource), copy.deepcopy(operations)
    try:
        new, changed = apply_operations(resource, operations, resource_type)
    except ScimError:
        pass
    else:
        assert changed is (new != before)
    assert resource == before
    assert operations == ops_before
