"""Filter parsing and rendering (RFC 7644 §3.4.2.2)."""

from __future__ import annotations

import pytest

from scimflow.pipeline.errors import InvalidFilter
from scimflow.pipeline.scim.filters import (
    MAX_FILTER_LENGTH,
    MAX_NESTING_DEPTH,
    And,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
    chain_operands,
    parse_filter,
    parse_value_filter,
    render_filter,
)
from scimflow.pipeline.scim.paths import AttrPath

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def p(name: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, name, sub)


# Every example filter of RFC 7644 §3.4.2.2, with the AST it must parse to.
RFC_EXAMPLES: list[tuple[str, Filter]] = [
    ('userName Eq "john"', Compare(p("userName"), "eq", "john")),
    ('userName eq "bjensen"', Compare(p("userName"), "eq", "bjensen")),
    ('name.familyName co "O\'Malley"', Compare(p("name", "familyName"), "co", "O'Malley")),
    ('userName sw "J"', Compare(p("userName"), "sw", "J")),
    (f'{CORE}:userName sw "J"', Compare(p("userName", urn=CORE), "sw", "J")),
    ("title pr", Present(p("title"))),
    (
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "ge", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "lt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "le", "2011-05-13T04:42:34Z"),
    ),
    (
        'title pr and userType eq "Employee"',
        And(Present(p("title")), Compare(p("userType"), "eq", "Employee")),
    ),
    (
        'title pr or userType eq "Intern"',
        Or(Present(p("title")), Compare(p("userType"), "eq", "Intern")),
    ),
    (
        f'schemas eq "{ENTERPRISE}"',
        Compare(p("schemas"), "eq", ENTERPRISE),
    ),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        And(
            Compare(p("userType"), "eq", "Employee"),
            Or(
                Compare(p("emails"), "co", "example.com"),
                Compare(p("emails", "value"), "co", "example.org"),
            ),
        ),
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        And(
            Compare(p("userType"), "ne", "Employee"),
            Not(
                Or(
                    Compare(p("emails"), "co", "example.com"),
                    Compare(p("emails", "value"), "co", "example.org"),
                )
            ),
        ),
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        And(Compare(p("userType"), "eq", "Employee"), Compare(p("emails", "type"), "eq", "work")),
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        And(
            Compare(p("userType"), "eq", "Employee"),
            ValuePath(
                p("emails"),
                And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com")),
            ),
        ),
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        Or(
            ValuePath(
                p("emails"),
                And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com")),
            ),
            ValuePath(
                p("ims"),
                And(Compare(p("type"), "eq", "xmpp"), Compare(p("value"), "co", "@foo.com")),
            ),
        ),
    ),
]

# What identity providers send in practice.
IDP_FILTERS: list[tuple[str, Filter]] = [
    ('externalId eq "00u1"', Compare(p("externalId"), "eq", "00u1")),
    ('displayName eq "Group A"', Compare(p("displayName"), "eq", "Group A")),
    (
        'id eq "1" and manager eq "2"',
        And(Compare(p("id"), "eq", "1"), Compare(p("manager"), "eq", "2")),
    ),
    (
        f'{ENTERPRISE}:manager.value eq "26118915"',
        Compare(p("manager", "value", ENTERPRISE), "eq", "26118915"),
    ),
    (
        # Entra ID: a filtered value path, then a sub-attribute comparison (module docstring).
        'emails[type eq "work"].value eq "a@b.c"',
        ValuePath(
            p("emails"),
            And(Compare(p("type"), "eq", "work"), Compare(p("value"), "eq", "a@b.c")),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES + IDP_FILTERS)
def test_parses_to_expected_ast(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected
    assert parse_filter(render_filter(expected)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('USERNAME EQ "x"', Compare(p("USERNAME"), "eq", "x")),
        ("a PR AND b pr OR c Pr", Or(And(Present(p("a")), Present(p("b"))), Present(p("c")))),
        ("NOT (a pr)", Not(Present(p("a")))),
        ("not(a pr)", Not(Present(p("a")))),
        ("a eq TRUE", Compare(p("a"), "eq", True)),
        ("a eq False", Compare(p("a"), "eq", False)),
        ("a eq NULL", Compare(p("a"), "eq", None)),
        ("a GE 5", Compare(p("a"), "ge", 5)),
    ],
)
def test_keywords_and_operators_are_case_insensitive(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0),
        ("-0", 0),
        ("42", 42),
        ("-17", -17),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("1E+2", 100.0),
        ("2.5e-3", 0.0025),
        ("10.0", 10.0),
        ('""', ""),
        ('"plain"', "plain"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\u00e9t\u00E9 \/ \b\f\n\r\t"', "été / \b\f\n\r\t"),
        (r'"\ud83d\ude00"', "\U0001f600"),
        ('"ünïcødé ✓"', "ünïcødé ✓"),
        ('"a]b)c(d[e"', "a]b)c(d[e"),
        ('"and or not pr"', "and or not pr"),
    ],
)
def test_json_literals(literal: str, value: object) -> None:
    parsed = parse_filter(f"attr eq {literal}")
    assert isinstance(parsed, Compare)
    assert parsed.value == value
    assert type(parsed.value) is type(value)


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    a, b, c, d = (Present(p(name)) for name in "abcd")
    assert parse_filter("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse_filter("a pr and b pr or c pr and d pr") == Or(And(a, b), And(c, d))
    assert parse_filter("not (a pr) and b pr") == And(Not(a), b)
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(a, b), c)


def test_and_and_or_are_left_associative() -> None:
    a, b, c = (Present(p(name)) for name in "abc")
    assert parse_filter("a pr and b pr and c pr") == And(And(a, b), c)
    assert parse_filter("a pr or b pr or c pr") == Or(Or(a, b), c)
    assert parse_filter("a pr or (b pr or c pr)") == Or(a, Or(b, c))


def test_whitespace_is_flexible() -> None:
    assert parse_filter('  userName   eq\t"x"  ') == Compare(p("userName"), "eq", "x")
    assert parse_filter("( a pr )and(b pr)") == And(Present(p("a")), Present(p("b")))


@pytest.mark.parametrize("keyword", ["not", "and", "or", "pr", "eq", "true", "null", "NOT"])
def test_keywords_can_be_attribute_names(keyword: str) -> None:
    # Context decides: "not" is the operator only before "(", "and"/"or" only between terms.
    assert parse_filter(f"{keyword} pr") == Present(p(keyword))
    assert parse_filter(f"{keyword} eq 1 and {keyword} pr") == And(
        Compare(p(keyword), "eq", 1), Present(p(keyword))
    )
    assert parse_filter(f"{keyword}[{keyword} pr]") == ValuePath(p(keyword), Present(p(keyword)))


@pytest.mark.parametrize(
    ("ast", "text"),
    [
        (Compare(p("userName"), "eq", "x"), 'userName eq "x"'),
        (Compare(p("a"), "eq", True), "a eq true"),
        (Compare(p("a"), "eq", None), "a eq null"),
        (Compare(p("a"), "eq", 1.0), "a eq 1.0"),
        (Compare(p("a"), "eq", 1e16), "a eq 1e+16"),
        (Compare(p("a"), "eq", 'q"\\\n'), r'a eq "q\"\\\n"'),
        (Compare(p("a"), "eq", "é"), 'a eq "é"'),
        (And(Or(Present(p("a")), Present(p("b"))), Present(p("c"))), "(a pr or b pr) and c pr"),
        (Or(Present(p("a")), And(Present(p("b")), Present(p("c")))), "a pr or b pr and c pr"),
        (And(Present(p("a")), And(Present(p("b")), Present(p("c")))), "a pr and (b pr and c pr)"),
        (And(And(Present(p("a")), Present(p("b"))), Present(p("c"))), "a pr and b pr and c pr"),
        (Not(Not(Present(p("a")))), "not (not (a pr))"),
        (
            ValuePath(p("emails"), And(Compare(p("type"), "eq", "work"), Present(p("value")))),
            'emails[type eq "work" and value pr]',
        ),
        (Present(p("manager", "value", ENTERPRISE)), f"{ENTERPRISE}:manager.value pr"),
    ],
)
def test_render_is_canonical(ast: Filter, text: str) -> None:
    assert render_filter(ast) == text
    assert parse_filter(text) == ast


def test_entra_value_path_form_renders_as_bracket_form() -> None:
    parsed = parse_filter('emails[type eq "work" or type eq "home"].value eq "x"')
    assert render_filter(parsed) == 'emails[(type eq "work" or type eq "home") and value eq "x"]'
    assert parse_filter(render_filter(parsed)) == parsed


def test_render_rejects_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="cannot be expressed"):
        render_filter(Compare(p("a"), "eq", float("inf")))


def test_value_filter_parses_relative_paths() -> None:
    assert parse_value_filter('type eq "work"') == Compare(p("type"), "eq", "work")
    with pytest.raises(InvalidFilter):
        parse_value_filter("emails[type pr]")


def test_long_or_chains_parse_render_and_flatten_without_recursion() -> None:
    # 512 alternatives fit the length limit; the left-deep AST is 511 levels deep, which a
    # recursive walk (two or more frames per level) could not survive.
    text = " or ".join(["a pr"] * 512)
    assert len(text) <= MAX_FILTER_LENGTH
    parsed = parse_filter(text)
    assert isinstance(parsed, Or)
    assert chain_operands(parsed) == [Present(p("a"))] * 512
    assert render_filter(parsed) == text


def test_nesting_up_to_the_limit_is_accepted() -> None:
    text = "(" * MAX_NESTING_DEPTH + "a pr" + ")" * MAX_NESTING_DEPTH
    assert parse_filter(text) == Present(p("a"))
    nots = "not (" * MAX_NESTING_DEPTH + "a pr" + ")" * MAX_NESTING_DEPTH
    assert render_filter(parse_filter(nots)) == nots


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_NESTING_DEPTH + 1) + "a pr" + ")" * (MAX_NESTING_DEPTH + 1),
        "not (" * (MAX_NESTING_DEPTH + 1) + "a pr" + ")" * (MAX_NESTING_DEPTH + 1),
        "(" * 2000 + "a pr" + ")" * 2000,
        "(" * 10_000 + "a pr" + ")" * 10_000,
        "not (" * 10_000 + "a pr" + ")" * 10_000,
        "(" * 10_000,
        "[" * 10_000,
    ],
)
def test_deep_nesting_is_rejected_without_recursion_error(text: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(text)


def test_length_limit() -> None:
    padding = MAX_FILTER_LENGTH - len('a eq ""')
    assert parse_filter(f'a eq "{"x" * padding}"') == Compare(p("a"), "eq", "x" * padding)
    with pytest.raises(InvalidFilter, match="longer than"):
        parse_filter(f'a eq "{"x" * (padding + 1)}"')


@pytest.mark.parametrize(
    "text",
    [
        # empty
        "",
        "   ",
        # unbalanced parentheses and brackets
        "(a pr",
        "a pr)",
        "((a pr)",
        "()",
        'emails[type eq "work"',
        'emails type eq "work"]',
        'emails[type eq "work")',
        '(emails[type eq "work")]',
        # unknown or misplaced operators
        "a xx 1",
        'a == "x"',
        'a = "x"',
        "a pr pr",
        "a",
        "a eq",
        "a pr and",
        "and",
        "or a pr",
        "a pr or or b pr",
        "a pr && b pr",
        "not a pr",
        "not",
        "a pr not (b pr)",
        # missing or malformed values
        "a eq and b pr",
        "a eq (1)",
        "a eq 'single'",
        "a eq unquoted",
        "a eq 01",
        "a eq 1.",
        "a eq .5",
        "a eq +1",
        "a eq 0x10",
        "a eq 1e999",
        "a eq -",
        "a eq tru",
        'a eq "bad \\x escape"',
        'a eq "bad \\u12 escape"',
        'a eq "raw\ncontrol"',
        # trailing garbage
        "a pr b",
        "a eq 1 2",
        'a eq "x" "y"',
        "a pr)",
        "a pr .x",
        "a pr ;",
        # unterminated strings
        'a eq "abc',
        'a eq "abc\\"',
        '"',
        # malformed attribute paths
        "1a pr",
        "a.b.c pr",
        "a. pr",
        "urn:a pr",
        "émail pr",
        'a:b eq "x"',
        # value paths
        "emails[]",
        "emails[type]",
        'emails[type eq "work" and x[y pr]]',
        'emails[x[y eq "z"]]',
        'emails[urn:x:y:type eq "work"]',
        'emails[type.sub eq "work"]',
        'name.givenName[type eq "x"]',
        'emails[type eq "work"].value',
        'emails[type eq "work"].value.display eq "x"',
        'emails[type eq "work"][value pr]',
        '[type eq "work"]',
        "emails[a pr] eq 1",
        # strings no database can store: NUL (escaped or raw) and a lone surrogate
        'userName eq "a\\u0000b"',
        'userName eq "a\x00b"',
        'userName sw "\\ud800"',
    ],
)
def test_malformed_filters_raise_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(text)


def test_error_detail_names_the_position() -> None:
    with pytest.raises(InvalidFilter, match="position 9"):
        parse_filter("userName xx 1")
    with pytest.raises(InvalidFilter, match="Unknown operator 'xx'"):
        parse_filter("userName xx 1")


def test_non_string_input_is_an_invalid_filter() -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(None)  # type: ignore[arg-type]
