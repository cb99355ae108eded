"""Fuzzing the protocol: whatever a client sends, the only failure is a 4xx ScimError.

RFC 7644 §3.12: errors are reported as SCIM error responses; `pipeline.errors` makes any other
exception escaping a request a bug. Every target below gets random input (random JSON, token
soup, and one-step mutations of the real samples in tests/samples) and may either succeed or
raise a ScimError with a 4xx status. Successful writes must also be canonical, and a PATCH the
API accepts must replay to the same state on the worker.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scimflow.pipeline.commands import Command
from scimflow.pipeline.errors import InvalidValue, ScimError
from scimflow.pipeline.scim.evaluate import check_filter, matches
from scimflow.pipeline.scim.filters import Not, parse_filter
from scimflow.pipeline.scim.patch import resolve_path
from scimflow.pipeline.scim.registry import GROUP, USER
from scimflow.pipeline.scim.render import Meta, Projection, render_resource
from scimflow.pipeline.scim.schema import Attribute, AttrType, ResourceType
from tests.conftest import PATCH_OP_SCHEMA, canonical, make_protocol, read_sample, sample_paths

PROTOCOL = make_protocol()
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CURRENT = {
    "User": canonical(PROTOCOL, "User", "rfc7643/rfc7643-8.3-enterprise-user.json"),
    "Group": canonical(PROTOCOL, "Group", "rfc7643/rfc7643-8.4-group.json"),
}
RESOURCE_TYPES = {"User": USER, "Group": GROUP}
TYPE_NAMES = st.sampled_from(["User", "Group"])
META = Meta("User", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "https://x/Users/1", 1)

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Resource = dict[str, Any]


def survives(call: Callable[[], Any]) -> Any:
    """Run `call`; a ScimError must be a 4xx, anything else escaping is a bug (re-raised)."""
    try:
        return call()
    except ScimError as error:
        assert 400 <= error.status < 500, error
        assert error.to_body()["status"] == str(error.status)
        return None


def assert_canonical(value: Any, where: str = "resource") -> None:
    """RFC 7643 §2.5 as the protocol stores it: no null, `[]` or `{}` anywhere, and JSON-safe."""
    assert value is not None and value not in ([], {}), where
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_canonical(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_canonical(item, f"{where}[{index}]")
    else:
        assert isinstance(value, str | int | float | bool), where


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A weighted st.one_of (which drops repeated branches, so cannot be weighted by them)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda chosen: chosen)


# --- Random JSON -----------------------------------------------------------------------------

# Names the protocol knows, in odd cases too, so that random bodies get past the first check.
KNOWN_KEYS = [
    "schemas", "id", "externalId", "meta", "userName", "USERNAME", "name", "givenName",
    "familyName", "name.givenName", "displayName", "nickName", "title", "active", "password",
    "emails", "value", "type", "primary", "display", "$ref", "phoneNumbers", "addresses",
    "groups", "members", "manager", "x509Certificates", "photos", "employeeNumber",
    ENTERPRISE, f"{ENTERPRISE}:manager", f"{ENTERPRISE}:department", USER_SCHEMA, GROUP_SCHEMA,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User", "Operations", "op", "path",
]  # fmt: skip
# No lone surrogates ("\ud800", valid JSON escapes but not Unicode): they are rejected as
# invalidValue, which the dedicated tests at the end check; st.text() never generates them.
STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["True", "False", "yes", "", " ", "work", "2011-05-13T04:42:34Z", "2011-13-45",
         "AAEC", "not base64!", "\x00", "\U0001f600", "null", "urn:x", '"', "[", "]"]
    ),
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70), st.floats(), STRINGS
)
KEYS = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=16,
)
# Values shaped like attribute values, so that random operations also get applied.
SHAPED_VALUES = st.one_of(
    STRINGS,
    st.booleans(),
    st.dictionaries(st.sampled_from(KNOWN_KEYS), STRINGS | st.booleans() | st.none(), max_size=3),
    st.lists(
        st.dictionaries(
            st.sampled_from(["value", "type", "primary", "display", "$ref", "x"]),
            STRINGS | st.booleans() | st.none(),
            max_size=3,
        ),
        max_size=3,
    ),
)
SCHEMA_LISTS = st.one_of(
    st.just([USER_SCHEMA]),
    st.just([GROUP_SCHEMA]),
    st.lists(st.sampled_from([USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE, "urn:x:y", ""]), max_size=3),
    JSON,
)
RANDOM_BODIES = st.one_of(
    st.builds(
        lambda schemas, rest: {**rest, "schemas": schemas},
        SCHEMA_LISTS,
        st.dictionaries(KEYS, JSON, max_size=6),
    ),
    JSON,
)


def shaped_bodies(resource_type: ResourceType) -> st.SearchStrategy[Any]:
    """Bodies with the right schemas and required attribute and random known attributes."""
    required = "userName" if resource_type is USER else "displayName"
    names = [attr.name for attr in resource_type.schema.attributes if attr.name != required]
    optional = dict.fromkeys([*names, "externalId", "id", "meta"], SHAPED_VALUES | JSON)
    schemas = [resource_type.schema.id]
    if resource_type.extensions:
        extension = resource_type.extension_schemas[0]
        ext_names = st.sampled_from([attr.name for attr in extension.attributes])
        optional[extension.id] = st.dictionaries(ext_names, SHAPED_VALUES | JSON, max_size=3)
        schemas.append(extension.id)
    return st.fixed_dictionaries(
        {"schemas": st.just(schemas), required: STRINGS}, optional=optional
    )


@cache  # flatmap calls it for every example
def bodies_for(type_name: str) -> st.SearchStrategy[tuple[str, Any]]:
    shaped = shaped_bodies(RESOURCE_TYPES[type_name])
    return st.tuples(st.just(type_name), weighted((2, shaped), (1, RANDOM_BODIES)))


RESOURCE_BODIES = TYPE_NAMES.flatmap(bodies_for)

# --- PATCH paths and filters as token soup ---------------------------------------------------

PATH_TOKENS = [
    "userName", "name", "name.givenName", "emails", "emails.value", "members", "members.value",
    "addresses", "groups", "meta", "meta.version", "id", "manager", "$ref", "x", "nope",
    f"{ENTERPRISE}:", f"{ENTERPRISE}:manager", f"{ENTERPRISE}:manager.value", USER_SCHEMA + ":",
    "urn:", ":", ".", "..", "[", "]", "].", "].value", ".display", "type", "value", "primary",
    " eq ", " ne ", " co ", " sw ", " gt ", " pr", " and ", " or ", "not ", "(", ")", " ",
    '"work"', '"x"', "true", "false", "null", "1", "-1.5e300", "1e999", '"\\u0000"', '"', "\\",
]  # fmt: skip
PATH_SOUP = st.lists(st.sampled_from(PATH_TOKENS), min_size=1, max_size=10).map("".join)


def known_paths(resource_type: ResourceType) -> list[str]:
    """Every attribute and sub-attribute path of a resource type, plus value-filtered ones."""
    out = []
    for schema in (resource_type.schema, *resource_type.extension_schemas):
        prefix = "" if schema is resource_type.schema else f"{schema.id}:"
        for attr in schema.attributes:
            out.append(prefix + attr.name)
            out.extend(f"{prefix}{attr.name}.{sub.name}" for sub in attr.sub_attributes)
            if attr.multi_valued and attr.is_complex:
                key = "type" if attr.sub("type") else "value"
                out.append(f'{attr.name}[{key} eq "work"]')
                out.extend(f'{attr.name}[{key} eq "x"].{sub.name}' for sub in attr.sub_attributes)
    return out


PATHS = weighted(
    (3, st.sampled_from(known_paths(USER) + known_paths(GROUP))),
    (1, PATH_SOUP),
    (1, st.text(max_size=30)),
    (
        1,
        st.sampled_from(
            [
                'emails[type eq "work"].value',
                'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
                'addresses[type eq "work" and primary eq true].streetAddress',
                'emails[not (type eq "work")]',
                'emails[type eq "work"].value eq "x"',
                f"{ENTERPRISE}:manager.value",
                "",
            ]
        ),
    ),
)
FILTERS = st.one_of(
    PATH_SOUP,
    st.text(max_size=40),
    st.lists(
        st.sampled_from(
            [
                'userName eq "bjensen"', "title pr", 'emails[type eq "work"]', "active eq true",
                'meta.lastModified gt "2011-05-13T04:42:34Z"', 'members.value eq "x"',
                f'{ENTERPRISE}:manager.value eq "x"', "not (title pr)", "x eq 1",
            ]
        ),
        min_size=1,
        max_size=4,
    ).map(" and ".join),
)  # fmt: skip

# --- PATCH bodies ----------------------------------------------------------------------------

OP_NAMES = st.sampled_from(["add", "remove", "replace", "Add", "Replace"])
OPS = st.one_of(st.sampled_from(["move", "", "copy", "ADD"]), SCALARS, JSON)
WELL_FORMED_OPERATION = st.fixed_dictionaries(
    {"op": OP_NAMES}, optional={"path": PATHS, "value": SHAPED_VALUES | JSON}
)
OPERATIONS = weighted(
    (4, WELL_FORMED_OPERATION),
    (1, st.fixed_dictionaries({}, optional={"op": OPS, "path": PATHS | JSON, "value": JSON})),
    (1, JSON),
)
SIMPLE_VALUES: dict[AttrType, st.SearchStrategy[Any]] = {
    AttrType.STRING: st.sampled_from(["work", "home", "x", "Babs", ""]),
    AttrType.REFERENCE: st.sampled_from(["https://example.com/v2/Users/1", "m1", "urn:x"]),
    AttrType.BOOLEAN: st.sampled_from([True, False, "True", "false"]),
    AttrType.INTEGER: st.integers(-3, 3),
    AttrType.DECIMAL: st.floats(-10, 10) | st.integers(-3, 3),
    AttrType.DATETIME: st.sampled_from(["2011-05-13T04:42:34Z", "2011-05-13"]),
    AttrType.BINARY: st.sampled_from(["AAEC", "TWFu"]),
}


def typed_value(attr: Attribute, *, whole: bool = True) -> st.SearchStrategy[Any]:
    """A value of the attribute's type (one item of it when `whole` is false), or null."""
    if not attr.is_complex:
        one = SIMPLE_VALUES[attr.type]
    else:
        subs = {sub.name: typed_value(sub) for sub in attr.sub_attributes}
        one = st.fixed_dictionaries({}, optional=subs)
    if attr.multi_valued and whole:
        return st.one_of(st.lists(one, max_size=3), one, st.none())
    return one | st.none()


def typed_operations(resource_type: ResourceType) -> st.SearchStrategy[dict[str, Any]]:
    """Operations whose path exists and whose value has the target's type."""
    cases = []
    for path in known_paths(resource_type):
        target = resolve_path(path, resource_type)
        leaf = target.sub or target.attr
        value = typed_value(leaf, whole=target.sub is None and target.value_filter is None)
        cases.append(
            st.builds(lambda op, v, p=path: {"op": op, "path": p, "value": v}, OP_NAMES, value)
        )
    return st.sampled_from(cases).flatmap(lambda chosen: chosen)


@cache  # flatmap calls it for every example
def patch_bodies_for(type_name: str) -> st.SearchStrategy[tuple[str, Any]]:
    operations = weighted((3, typed_operations(RESOURCE_TYPES[type_name])), (2, OPERATIONS))
    well_formed = st.builds(
        lambda ops: {"schemas": [PATCH_OP_SCHEMA], "Operations": ops},
        st.lists(operations, min_size=1, max_size=3),
    )
    anything = st.builds(
        lambda schemas, ops: {"schemas": schemas, "Operations": ops},
        st.one_of(st.just([PATCH_OP_SCHEMA]), JSON),
        st.lists(OPERATIONS, max_size=4) | JSON,
    )
    return st.tuples(st.just(type_name), weighted((4, well_formed), (1, anything), (1, JSON)))


PATCH_BODIES = TYPE_NAMES.flatmap(patch_bodies_for)


def check_patch(type_name: str, payload: Any) -> None:
    """PATCH: a ScimError, or a canonical state the worker reaches from the journaled command."""
    current = CURRENT[type_name]
    before = copy.deepcopy(current)
    result = survives(lambda: PROTOCOL.validate_patch(type_name, "id", payload, current))
    assert current == before
    if result is None:
        return
    command, new, changed = result
    assert_canonical(new) if new else None
    journaled = Command.from_json(json.loads(json.dumps(command.to_json())))
    assert PROTOCOL.apply(journaled, current) == (new, changed)
    assert current == before


def check_create(type_name: str, payload: Any) -> None:
    command = survives(lambda: PROTOCOL.validate_create(type_name, "id", payload))
    if command is not None:
        assert_canonical(command.resource)
        json.dumps(command.to_json())


def check_replace(type_name: str, payload: Any) -> None:
    current = CURRENT[type_name]
    before = copy.deepcopy(current)
    command = survives(lambda: PROTOCOL.validate_replace(type_name, "id", payload, current))
    assert current == before
    if command is not None:
        assert_canonical(command.resource)


@FUZZ
@given(RESOURCE_BODIES)
def test_fuzz_create(case: tuple[str, Any]) -> None:
    """RFC 7644 §3.3 / §3.12: any POST body is accepted canonically or refused with a 4xx."""
    check_create(*case)


@FUZZ
@given(RESOURCE_BODIES)
def test_fuzz_replace(case: tuple[str, Any]) -> None:
    """RFC 7644 §3.5.1 / §3.12: any PUT body is accepted canonically or refused with a 4xx."""
    check_replace(*case)


@FUZZ
@given(PATCH_BODIES)
def test_fuzz_patch(case: tuple[str, Any]) -> None:
    """RFC 7644 §3.5.2 / §3.12: any PATCH body is refused with a 4xx or applied identically by
    the API and the worker."""
    check_patch(*case)


@FUZZ
@given(TYPE_NAMES, FILTERS)
def test_fuzz_filter(type_name: str, text: str) -> None:
    """RFC 7644 §3.4.2.2: any filter text parses and checks, or fails with invalidFilter (4xx);
    a checked filter evaluates to a boolean, and `not (filter)` to the other one."""
    resource_type = RESOURCE_TYPES[type_name]
    parsed = survives(lambda: parse_filter(text))
    if parsed is None:
        return
    try:
        check_filter(parsed, resource_type)
    except ScimError as error:
        assert error.status == 400
        return
    matched = matches(parsed, CURRENT[type_name], resource_type)
    assert isinstance(matched, bool)
    assert matches(Not(parsed), CURRENT[type_name], resource_type) is (not matched)


@FUZZ
@given(TYPE_NAMES, PATHS)
def test_fuzz_patch_path(type_name: str, text: str) -> None:
    """RFC 7644 §3.5.2 Figure 7: any PATCH path resolves or fails with a 4xx."""
    survives(lambda: resolve_path(text, RESOURCE_TYPES[type_name]))


ATTRIBUTE_LISTS = st.one_of(
    st.lists(st.sampled_from([*PATH_TOKENS, ",", ", "]), max_size=8).map("".join),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.none(),
)


@FUZZ
@given(TYPE_NAMES, ATTRIBUTE_LISTS, ATTRIBUTE_LISTS)
def test_fuzz_projection(type_name: str, attributes: Any, excluded: Any) -> None:
    """RFC 7644 §3.9: any attributes / excludedAttributes value resolves (unknown names select
    nothing), and rendering with it never fails; `id` is always returned."""
    resource_type: ResourceType = RESOURCE_TYPES[type_name]
    projection = survives(lambda: Projection.parse(resource_type, attributes, excluded))
    if projection is not None:
        out = render_resource(
            CURRENT[type_name], resource_type, resource_id="1", meta=META, projection=projection
        )
        assert out["id"] == "1"
        assert "password" not in out


# --- Mutations of the real samples -----------------------------------------------------------

SAMPLE_FILES = sample_paths("**/*.json")


def sample_target(path: str) -> tuple[str, str]:
    """(method, resource type) a sample is sent to, from its file name."""
    name = path.rsplit("/", 1)[-1].lower()
    type_name = "Group" if "group" in name or "member" in name else "User"
    if "patch" in name or "rfc7644-3.5.2" in name:
        return "patch", type_name
    if "put" in name or "3.5.1" in name:
        return "replace", type_name
    return "create", type_name


def locations(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key / index path inside a JSON document."""
    found: list[tuple[Any, ...]] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found.extend(locations(value, (*prefix, key)))
    return found


def retype(value: Any) -> Any:
    """The same content in another JSON type."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, list):
        return value[0] if value else {}
    if isinstance(value, dict):
        return list(value.values())
    return 0


@st.composite
def mutated_samples(draw: st.DrawFn) -> tuple[str, str, Any]:
    path = draw(st.sampled_from(SAMPLE_FILES))
    doc = read_sample(path)
    method, type_name = sample_target(path)
    spots = locations(doc)
    if not spots:
        return method, type_name, draw(JSON)
    *parents, last = draw(st.sampled_from(spots))
    container = doc
    for key in parents:
        container = container[key]
    mutation = draw(st.sampled_from(["drop", "replace", "retype", "rename", "null"]))
    if mutation == "drop":
        del container[last]
    elif mutation == "replace":
        container[last] = draw(JSON)
    elif mutation == "retype":
        container[last] = retype(container[last])
    elif mutation == "null":
        container[last] = None
    elif isinstance(container, dict):
        container[draw(KEYS)] = container.pop(last)
    else:
        container.insert(0, container.pop(last))
    return method, type_name, doc


@settings(FUZZ, max_examples=1000)
@given(mutated_samples())
def test_fuzz_mutated_samples(case: tuple[str, str, Any]) -> None:
    """RFC 7644 §3.12: a real request with one key or value dropped, replaced, retyped,
    renamed or nulled is accepted canonically or refused with a 4xx, never a crash."""
    method, type_name, payload = case
    {"patch": check_patch, "replace": check_replace, "create": check_create}[method](
        type_name, payload
    )


def test_every_sample_is_fuzzed() -> None:
    """The mutation fuzzer draws from every sample in tests/samples."""
    assert len(SAMPLE_FILES) >= 50
    assert all(locations(read_sample(path)) or path for path in SAMPLE_FILES)


# --- Strings that are valid JSON but not Unicode, found by fuzzing ----------------------------

LONE_SURROGATE = json.loads('"\\ud800"')  # valid JSON, but no UTF-8 encoding exists


def test_password_with_lone_surrogate_is_invalid_value_on_create() -> None:
    """RFC 7643 §2.3.1: a string is Unicode encoded as UTF-8; one that cannot be is
    invalidValue (RFC 7644 §3.12), not a server error."""
    body = {"schemas": [USER_SCHEMA], "userName": "babs", "password": LONE_SURROGATE}
    with pytest.raises(InvalidValue):
        PROTOCOL.validate_create("User", "id", body)


def test_password_with_lone_surrogate_is_invalid_value_on_patch() -> None:
    """RFC 7644 §3.5.2 / §3.12: the same string in a PATCH is invalidValue too."""
    payload = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "value": {"password": LONE_SURROGATE}}],
    }
    with pytest.raises(InvalidValue):
        PROTOCOL.validate_patch("User", "id", payload, CURRENT["User"])


def test_string_with_lone_surrogate_is_invalid_value() -> None:
    """RFC 7643 §2.3.1: "A sequence of zero or more Unicode characters encoded using UTF-8"."""
    body = {"schemas": [USER_SCHEMA], "userName": f"babs{LONE_SURROGATE}"}
    with pytest.raises(InvalidValue):
        PROTOCOL.validate_create("User", "id", body)


# --- NUL: valid JSON and Unicode, but no database here can store it ---------------------------


@pytest.mark.parametrize(
    ("type_name", "body"),
    [
        ("User", {"schemas": [USER_SCHEMA], "userName": "nul\x00"}),
        ("User", {"schemas": [USER_SCHEMA], "userName": "babs", "displayName": "B\x00"}),
        ("User", {"schemas": [USER_SCHEMA], "userName": "babs", "password": "pw\x00"}),
        ("User", {"schemas": [USER_SCHEMA], "userName": "babs", "emails": [{"value": "\x00"}]}),
        ("Group", {"schemas": [GROUP_SCHEMA], "displayName": "g\x00"}),
        ("Group", {"schemas": [GROUP_SCHEMA], "displayName": "g",
                   "members": [{"value": "id", "display": "x\x00"}]}),
    ],
)
def test_nul_anywhere_in_a_create_is_invalid_value(type_name: str, body: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue):
        PROTOCOL.validate_create(type_name, "id", body)


@pytest.mark.parametrize("path", ["title", "nickName", "name.givenName"])
def test_nul_in_a_patch_value_is_invalid_value(path: str) -> None:
    payload = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "replace", "path": path, "value": "t\x00"}],
    }
    with pytest.raises(InvalidValue):
        PROTOCOL.validate_patch("User", "id", payload, CURRENT["User"])
