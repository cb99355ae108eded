"""Attribute paths (RFC 7644 §3.10) and PATCH paths (RFC 7644 §3.5.2)."""

from __future__ import annotations

import pytest

from scimflow.pipeline.errors import InvalidFilter, InvalidPath
from scimflow.pipeline.scim.filters import And, Compare, Not, Or, Present
from scimflow.pipeline.scim.patch_paths import PatchPath, parse_path, render_path
from scimflow.pipeline.scim.paths import (
    MAX_PATH_LENGTH,
    AttrPath,
    parse_attr_path,
    render_attr_path,
)

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
KNOWN = (CORE, ENTERPRISE)


def rel(name: str) -> AttrPath:
    """A path relative to a value path's attribute, as found inside brackets."""
    return AttrPath(None, name, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", AttrPath(None, "userName", None)),
        ("name.givenName", AttrPath(None, "name", "givenName")),
        ("meta.lastModified", AttrPath(None, "meta", "lastModified")),
        ("members.$ref", AttrPath(None, "members", "$ref")),
        ("$ref", AttrPath(None, "$ref", None)),
        ("x-custom_attr9", AttrPath(None, "x-custom_attr9", None)),
        (f"{CORE}:userName", AttrPath(CORE, "userName", None)),
        (f"{CORE}:name.givenName", AttrPath(CORE, "name", "givenName")),
        (f"{ENTERPRISE}:employeeNumber", AttrPath(ENTERPRISE, "employeeNumber", None)),
        (f"{ENTERPRISE}:manager.value", AttrPath(ENTERPRISE, "manager", "value")),
        ("urn:example:v1.2:attr", AttrPath("urn:example:v1.2", "attr", None)),
    ],
)
def test_parse_attr_path(text: str, expected: AttrPath) -> None:
    assert parse_attr_path(text) == expected
    assert parse_attr_path(text, KNOWN) == expected
    assert render_attr_path(expected) == text


def test_names_and_urns_are_kept_as_written() -> None:
    text = "URN:IETF:params:scim:schemas:core:2.0:User:USERNAME.Sub"
    assert parse_attr_path(text) == AttrPath(
        "URN:IETF:params:scim:schemas:core:2.0:User", "USERNAME", "Sub"
    )


def test_bare_urn_without_known_urns_splits_at_the_last_colon() -> None:
    # Syntactically "...:2.0:User" is URN "...:2.0" plus attribute "User" (module docstring).
    assert parse_attr_path(ENTERPRISE) == AttrPath(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User", None
    )


@pytest.mark.parametrize("text", [ENTERPRISE, ENTERPRISE.upper(), CORE])
def test_known_urn_alone_names_the_whole_extension(text: str) -> None:
    assert parse_attr_path(text, KNOWN) == AttrPath(text, "", None)
    assert render_attr_path(AttrPath(text, "", None)) == text


def test_known_urn_prefix_is_split_right_after_the_urn() -> None:
    known = ("urn:example:ext:2.0:Widget", "urn:example:ext")
    assert parse_attr_path("urn:example:ext:2.0:Widget:size", known) == AttrPath(
        "urn:example:ext:2.0:Widget", "size", None
    )
    # The longest known URN wins; an unknown longer URN still parses syntactically.
    assert parse_attr_path("urn:example:ext:v9:attr", known) == AttrPath(
        "urn:example:ext:v9", "attr", None
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        " userName",
        "userName ",
        "1name",
        "-name",
        "name.",
        ".name",
        "name..sub",
        "name.givenName.extra",
        "na me",
        "name[",
        "émail",
        "urn:userName",
        f"{CORE}:",
        f"{CORE}:1bad",
        'emails[type eq "work"]',
        "$refs",
        "a\nb",
    ],
)
def test_parse_attr_path_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidPath):
        parse_attr_path(text, KNOWN)


def test_parse_attr_path_rejects_overlong_input() -> None:
    with pytest.raises(InvalidPath):
        parse_attr_path("a" * (MAX_PATH_LENGTH + 1))


# --- PATCH paths: RFC 7644 §3.5.2 examples and what IdPs send ----------------------------------

MEMBER_ID = "2819c223-7f76-453a-919d-413861904646"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("members", PatchPath(AttrPath(None, "members", None), None, None)),
        ("name.familyName", PatchPath(AttrPath(None, "name", "familyName"), None, None)),
        (
            'addresses[type eq "work"]',
            PatchPath(AttrPath(None, "addresses", None), Compare(rel("type"), "eq", "work"), None),
        ),
        (
            f'members[value eq "{MEMBER_ID}"]',
            PatchPath(
                AttrPath(None, "members", None), Compare(rel("value"), "eq", MEMBER_ID), None
            ),
        ),
        (
            f'members[value eq "{MEMBER_ID}"].displayName',
            PatchPath(
                AttrPath(None, "members", None),
                Compare(rel("value"), "eq", MEMBER_ID),
                "displayName",
            ),
        ),
        (
            'emails[type eq "work"].value',
            PatchPath(AttrPath(None, "emails", None), Compare(rel("type"), "eq", "work"), "value"),
        ),
        (
            'emails[type eq "work" and primary eq true]',
            PatchPath(
                AttrPath(None, "emails", None),
                And(Compare(rel("type"), "eq", "work"), Compare(rel("primary"), "eq", True)),
                None,
            ),
        ),
        (
            'addresses[type eq "work" or not (primary pr)].streetAddress',
            PatchPath(
                AttrPath(None, "addresses", None),
                Or(Compare(rel("type"), "eq", "work"), Not(Present(rel("primary")))),
                "streetAddress",
            ),
        ),
        (
            f"{ENTERPRISE}:employeeNumber",
            PatchPath(AttrPath(ENTERPRISE, "employeeNumber", None), None, None),
        ),
        (
            f"{ENTERPRISE}:manager.value",
            PatchPath(AttrPath(ENTERPRISE, "manager", "value"), None, None),
        ),
        (
            f'{CORE}:emails[type eq "work"].value',
            PatchPath(AttrPath(CORE, "emails", None), Compare(rel("type"), "eq", "work"), "value"),
        ),
        (
            "members.$ref",
            PatchPath(AttrPath(None, "members", "$ref"), None, None),
        ),
    ],
)
def test_parse_path(text: str, expected: PatchPath) -> None:
    assert parse_path(text, KNOWN) == expected
    assert render_path(expected) == text


def test_patch_path_naming_a_whole_extension() -> None:
    assert parse_path(ENTERPRISE, KNOWN) == PatchPath(AttrPath(ENTERPRISE, "", None), None, None)
    assert render_path(parse_path(ENTERPRISE, KNOWN)) == ENTERPRISE


@pytest.mark.parametrize(
    ("text", "value", "sub"),
    [
        ('emails[value eq "a]b"]', "a]b", None),
        ('emails[value eq "x].y"]', "x].y", None),
        ('emails[value eq "["].display', "[", "display"),
        ('emails[value eq "\\"]"]', '"]', None),
    ],
)
def test_brackets_and_dots_inside_strings_do_not_end_the_value_path(
    text: str, value: str, sub: str | None
) -> None:
    parsed = parse_path(text)
    assert parsed.value_filter == Compare(rel("value"), "eq", value)
    assert parsed.sub == sub


@pytest.mark.parametrize(
    "text",
    [
        "",
        "emails[",
        "emails]",
        "emails[]",
        'emails[type eq "work"',
        'emails[type eq "work"]x',
        'emails[type eq "work"].',
        'emails[type eq "work"].value.display',
        'emails[type eq "work"].1x',
        "emails[type eq]",
        "emails[type xx 1]",
        'emails[type eq "work"] or ims[type pr]',
        'emails[type eq "work"][primary eq true]',
        "emails[x[y pr]]",
        f"emails[{CORE}:type pr]",
        "emails[value.sub pr]",
        'name.givenName[type eq "x"]',
        f'{ENTERPRISE}[type eq "x"]',
        '[type eq "work"]',
        "emails [type pr]",
        "members[value eq 'single-quoted']",
        "a" * (MAX_PATH_LENGTH + 1),
    ],
)
def test_parse_path_rejects_malformed(text: str) -> None:
    """A malformed path is invalidPath; a malformed [filter] inside it is invalidFilter."""
    with pytest.raises((InvalidPath, InvalidFilter)):
        parse_path(text, KNOWN)


@pytest.mark.parametrize(
    "text",
    ["emails[]", "emails[type eq]", "emails[type xx 1]", "members[value eq 'single-quoted']"],
)
def test_malformed_value_filter_in_path_is_invalid_filter(text: str) -> None:
    """RFC 7644 Table 9 lists invalidFilter for PATCH path filters."""
    with pytest.raises(InvalidFilter):
        parse_path(text, KNOWN)
