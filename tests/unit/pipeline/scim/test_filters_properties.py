"""Property tests: rendering round-trips, and no input escapes as anything but a SCIM error."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scimflow.pipeline.errors import InvalidFilter, InvalidPath, ScimError
from scimflow.pipeline.scim.evaluate import check_filter, matches
from scimflow.pipeline.scim.filters import (
    COMPARE_OPS,
    MAX_FILTER_LENGTH,
    MAX_NESTING_DEPTH,
    And,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
    parse_filter,
    render_filter,
)
from scimflow.pipeline.scim.patch_paths import PatchPath, parse_path, render_path
from scimflow.pipeline.scim.paths import (
    AttrPath,
    parse_attr_path,
    render_attr_path,
)
from scimflow.pipeline.scim.schema import Extension, ResourceType, load_builtin_schema

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keywords as attribute names are legal and the parser must tell them apart by context.
KEYWORDS = ["and", "or", "not", "pr", "eq", "gt", "true", "false", "null", "NOT", "Or", "$ref"]
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,8}", fullmatch=True) | st.sampled_from(KEYWORDS)
urns = st.from_regex(r"urn:[a-z][a-z0-9-]{0,6}(:[A-Za-z0-9._-]{1,8}){1,4}", fullmatch=True)
# Filter strings are storable text: NUL and lone surrogates are refused (test_filters.py).
storable_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20
)
values = st.one_of(
    storable_text,
    st.sampled_from(['"', "\\", '\\"', "]", ")", "\x01\x1f\x7f", "\u2028", "\U0001f600"]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
ops = st.sampled_from(sorted(COMPARE_OPS))

absolute_paths = st.builds(AttrPath, st.none() | urns, names, st.none() | names)
collection_paths = st.builds(AttrPath, st.none() | urns, names, st.none())
relative_paths = st.builds(AttrPath, st.none(), names, st.none())


def logic(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return (
        st.builds(And, children, children)
        | st.builds(Or, children, children)
        | st.builds(Not, children)
    )


def conditions(paths: st.SearchStrategy[AttrPath]) -> st.SearchStrategy[Filter]:
    return st.builds(Compare, paths, ops, values) | st.builds(Present, paths)


# Inside brackets: relative paths only and no nested value path (RFC 7644 §3.4.2.2).
value_filters = st.recursive(conditions(relative_paths), logic, max_leaves=6)
filters = st.recursive(
    conditions(absolute_paths) | st.builds(ValuePath, collection_paths, value_filters),
    logic,
    max_leaves=10,
)


def depth(f: Filter) -> int:
    """AST depth: an upper bound on the parentheses/brackets its rendering nests."""
    if isinstance(f, And | Or):
        return 1 + max(depth(f.left), depth(f.right))
    if isinstance(f, Not | ValuePath):
        return 1 + depth(f.inner if isinstance(f, Not) else f.filter)
    return 0


@SETTINGS
@given(filters)
def test_render_then_parse_is_identity(f: Filter) -> None:
    assume(depth(f) <= MAX_NESTING_DEPTH)
    text = render_filter(f)
    assume(len(text) <= MAX_FILTER_LENGTH)
    parsed = parse_filter(text)
    assert parsed == f
    # repr distinguishes what == conflates: True vs 1, 1.0 vs 1.
    assert repr(parsed) == repr(f)
    assert render_filter(parsed) == text


patch_paths = st.builds(PatchPath, absolute_paths, st.none(), st.none()) | st.builds(
    PatchPath, collection_paths, value_filters, st.none() | names
)


@SETTINGS
@given(patch_paths)
def test_render_then_parse_path_is_identity(path: PatchPath) -> None:
    assume(path.value_filter is None or depth(path.value_filter) < MAX_NESTING_DEPTH)
    text = render_path(path)
    assume(len(text) <= MAX_FILTER_LENGTH)
    parsed = parse_path(text)
    assert parsed == path
    assert repr(parsed) == repr(path)


@SETTINGS
@given(urns, names, st.none() | names)
def test_known_urns_split_whole_extensions_and_attributes(
    urn: str, name: str, sub: str | None
) -> None:
    assert parse_attr_path(urn, [urn]) == AttrPath(urn, "", None)
    assert parse_path(urn.upper(), [urn]) == PatchPath(AttrPath(urn.upper(), "", None), None, None)
    path = AttrPath(urn, name, sub)
    assert parse_attr_path(render_attr_path(path), [urn]) == path


# Token soup reaches deeper into the parser than uniformly random text.
PUNCTUATION = ["(", ")", "[", "]", " ", '"', ":", "\\", "."]
WORDS = ["not", "and", "or", "eq", "pr", "gt", "true", "null", "emails", "type", "$ref"]
PIECES = ['"x"', "1", "-1.5e3", ".value", "urn:a:b:", "name.givenName"]
FRAGMENTS = PUNCTUATION + WORDS + PIECES
soup = st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join)
arbitrary_text = st.text() | soup


@SETTINGS
@given(arbitrary_text)
def test_parse_filter_raises_only_invalid_filter(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except InvalidFilter:
        return
    assert parse_filter(render_filter(parsed)) == parsed


@SETTINGS
@given(arbitrary_text)
def test_parse_path_raises_only_invalid_path_or_filter(text: str) -> None:
    """A bad path is invalidPath; a bad [filter] in it is invalidFilter (RFC 7644 Table 9)."""
    try:
        parsed = parse_path(text)
    except (InvalidPath, InvalidFilter):
        return
    assert parse_path(render_path(parsed)) == parsed


@SETTINGS
@given(arbitrary_text)
def test_parse_attr_path_raises_only_invalid_path(text: str) -> None:
    try:
        parsed = parse_attr_path(text)
    except InvalidPath:
        return
    assert render_attr_path(parsed) == text


# --- Evaluation never fails with anything but a SCIM error -----------------------------------

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_TYPE = ResourceType(
    "User",
    "/Users",
    "User Account",
    load_builtin_schema("user.json"),
    (Extension(load_builtin_schema("enterprise_user.json")),),
)
USER_PATHS = [
    AttrPath(None, "userName", None),
    AttrPath(None, "name", "givenName"),
    AttrPath(None, "name", None),
    AttrPath(None, "emails", None),
    AttrPath(None, "emails", "primary"),
    AttrPath(None, "active", None),
    AttrPath(None, "meta", "lastModified"),
    AttrPath(None, "x509Certificates", "value"),
    AttrPath(None, "schemas", None),
    AttrPath(ENTERPRISE, "manager", "value"),
    AttrPath(None, "unknown", None),
]
EMAIL_PATHS = [AttrPath(None, n, None) for n in ("value", "type", "primary", "display", "nope")]
user_values = values | st.sampled_from(["2011-05-13T04:42:34Z", "work", "not a date"])
user_filters = st.recursive(
    st.builds(Compare, st.sampled_from(USER_PATHS), ops, user_values)
    | st.builds(Present, st.sampled_from(USER_PATHS))
    | st.builds(
        ValuePath,
        st.just(AttrPath(None, "emails", None)),
        st.recursive(
            st.builds(Compare, st.sampled_from(EMAIL_PATHS), ops, user_values),
            logic,
            max_leaves=4,
        ),
    ),
    logic,
    max_leaves=8,
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["value", "type"]), c),
    max_leaves=6,
)
resources = st.fixed_dictionaries(
    {},
    optional={
        "userName": json_values,
        "name": json_values,
        "emails": json_values,
        "active": json_values,
        "meta": json_values,
        "schemas": json_values,
        "x509Certificates": json_values,
        ENTERPRISE: json_values,
    },
)


@SETTINGS
@given(user_filters, resources)
def test_check_then_match_raise_only_scim_errors(f: Filter, resource: dict[str, Any]) -> None:
    try:
        check_filter(f, USER_TYPE)
    except InvalidFilter:
        # Unchecked input still fails only with a SCIM error.
        with contextlib.suppress(ScimError):
            matches(f, resource, USER_TYPE)
        return
    assert isinstance(matches(f, resource, USER_TYPE), bool)
