"""Never-returned attributes cannot be searched, and case-insensitive strings fold as keys do.

Resolution (`evaluate.resolve`) is where a filter or sort path meets the schema, so it is
where an attribute whose `returned` is "never" is refused; checking, in-memory evaluation and
PATCH value filters all go through it.
"""

from __future__ import annotations

from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidFilter
from scimflow.pipeline.scim.evaluate import (
    check_filter,
    check_value_filter,
    matches,
    resolve,
    value_matches,
)
from scimflow.pipeline.scim.filters import Compare, Present, parse_filter
from scimflow.pipeline.scim.paths import AttrPath
from scimflow.pipeline.scim.schema import Extension, ResourceType, Schema, load_builtin_schema
from scimflow.pipeline.scim.unicode import fold_key

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
VAULT = "urn:example:vault:2.0:User"
HASH = "pbkdf2_sha256$600000$c2FsdA$ZGlnZXN0"

# A tenant extension with never-returned attributes at every level a path can reach.
VAULT_EXTENSION = Schema.from_dict(
    {
        "id": VAULT,
        "name": "Vault",
        "attributes": [
            {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
            {"name": "label", "type": "string"},
            {
                "name": "keys",
                "type": "complex",
                "multiValued": True,
                "subAttributes": [
                    {"name": "type", "type": "string"},
                    {"name": "secret", "type": "string", "returned": "never"},
                ],
            },
            {
                "name": "tokens",  # compared as a whole through a never-returned "value"
                "type": "complex",
                "multiValued": True,
                "subAttributes": [
                    {"name": "value", "type": "string", "returned": "never"},
                    {"name": "type", "type": "string"},
                ],
            },
            {
                "name": "safe",  # never returned as a whole: so none of its parts
                "type": "complex",
                "returned": "never",
                "subAttributes": [{"name": "combination", "type": "string"}],
            },
        ],
    }
)
USER_TYPE = ResourceType(
    "User", "/Users", "User Account", load_builtin_schema("user.json"),
    (Extension(VAULT_EXTENSION),),
)


def user() -> dict[str, Any]:
    return {
        "schemas": [CORE, VAULT],
        "userName": "ada",
        "active": True,
        "password": HASH,
        VAULT: {
            "pin": "4711",
            "label": "front",
            "keys": [{"type": "garage", "secret": "s3cret"}],
            "tokens": [{"value": "t0ken", "type": "api"}],
            "safe": {"combination": "1234"},
        },
    }


@pytest.mark.parametrize(
    "path",
    [
        AttrPath(None, "password", None),
        AttrPath(None, "PASSWORD", None),
        AttrPath(CORE, "password", None),
        AttrPath(VAULT, "pin", None),
        AttrPath(VAULT, "keys", "secret"),
        AttrPath(VAULT, "tokens", "value"),
        AttrPath(VAULT, "safe", None),
        AttrPath(VAULT, "safe", "combination"),
    ],
)
def test_resolving_a_never_returned_path_is_invalid_filter(path: AttrPath) -> None:
    with pytest.raises(InvalidFilter, match="never returned"):
        resolve(path, USER_TYPE)
    # The returned parts around it still resolve.
    keys = resolve(AttrPath(VAULT, "keys", None), USER_TYPE)
    assert keys is not None and keys.name == "keys"
    label = resolve(AttrPath(VAULT, "keys", "type"), USER_TYPE)
    assert label is not None and label.name == "type"
    assert resolve(AttrPath(None, "nope", None), USER_TYPE) is None


@pytest.mark.parametrize(
    "text",
    [
        f'password eq "{HASH}"',
        'password sw "pbkdf2_sha256$600000$G"',
        'password co "$"',
        'password ew "t"',
        'password gt "a"',
        'password le "z"',
        "password pr",
        "password eq null",
        'password ne "x"',
        "not (password pr)",
        'userName eq "ada" and password sw "p"',
        'userName eq "x" or (active eq true and not (password pr))',
        'emails[type eq "work"] or password pr',
        f'{VAULT}:pin eq "4711"',
        f'{VAULT}:keys.secret sw "s"',
        f'{VAULT}:keys[secret eq "s3cret"]',
        f'{VAULT}:keys[type eq "garage" and not (secret pr)]',
        f'{VAULT}:tokens eq "t0ken"',
        f'{VAULT}:tokens co "k"',
        f"{VAULT}:safe pr",
        f'{VAULT}:safe.combination eq "1234"',
    ],
)
def test_filters_naming_a_never_returned_attribute_are_refused(text: str) -> None:
    parsed = parse_filter(text)
    with pytest.raises(InvalidFilter, match="never returned"):
        check_filter(parsed, USER_TYPE)
    # Evaluated without the check, it is refused too: never answered as true or false.
    with pytest.raises(InvalidFilter, match="never returned"):
        matches(parsed, user(), USER_TYPE)
    # The returned parts of the same resource stay searchable.
    for returned in (f'{VAULT}:label eq "FRONT"', f'{VAULT}:keys[type eq "garage"]',
                     f'{VAULT}:keys.type sw "gar"', f'{VAULT}:tokens.type eq "api"',
                     f"{VAULT}:tokens pr"):
        check_filter(parse_filter(returned), USER_TYPE)
        assert matches(parse_filter(returned), user(), USER_TYPE), returned


@pytest.mark.parametrize("hidden_only", [[{"secret": "s3cret"}], [{"secret": "s"}, {"type": ""}]])
def test_present_ignores_never_returned_parts(hidden_only: list[dict[str, Any]]) -> None:
    parsed = parse_filter(f"{VAULT}:keys pr")
    check_filter(parsed, USER_TYPE)
    assert not matches(parsed, {VAULT: {"keys": hidden_only}}, USER_TYPE)
    shown = [*hidden_only, {"type": "garage"}]
    assert matches(parsed, {VAULT: {"keys": shown}}, USER_TYPE)


def test_patch_value_filters_cannot_name_a_never_returned_sub_attribute() -> None:
    keys = resolve(AttrPath(VAULT, "keys", None), USER_TYPE)
    assert keys is not None
    secret = Compare(AttrPath(None, "secret", None), "eq", "s3cret")
    with pytest.raises(InvalidFilter, match="never returned"):
        check_value_filter(secret, keys)
    with pytest.raises(InvalidFilter, match="never returned"):
        value_matches(secret, {"secret": "s3cret"}, keys)
    kind = Compare(AttrPath(None, "type", None), "eq", "GARAGE")
    check_value_filter(kind, keys)
    assert value_matches(kind, {"type": "garage", "secret": "s3cret"}, keys)


def test_patch_value_filters_under_a_never_returned_attribute_are_refused() -> None:
    safe = VAULT_EXTENSION.attribute("safe")
    assert safe is not None
    with pytest.raises(InvalidFilter, match="never returned"):
        check_value_filter(Present(AttrPath(None, "combination", None)), safe)


# --- Case-insensitive strings fold as unique keys do -----------------------------------------

DECOMPOSED_E = "e\u0301"  # "e" + COMBINING ACUTE ACCENT: canonically equal to "é"


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        ("José", f'userName eq "JOS{DECOMPOSED_E.upper()}"'),
        (f"Jos{DECOMPOSED_E}", 'userName eq "josé"'),
        (f"Jos{DECOMPOSED_E} Ortiz", 'userName sw "JOSÉ"'),
        ("José Ortiz", f'userName co "s{DECOMPOSED_E} o"'),
        ("Ortiz, José", f'userName ew "{DECOMPOSED_E.upper()}"'),
    ],
)
def test_case_insensitive_strings_compare_by_fold_key(stored: str, text: str) -> None:
    parsed = parse_filter(text)
    check_filter(parsed, USER_TYPE)
    assert matches(parsed, {"userName": stored}, USER_TYPE)
    # A caseExact attribute compares as stored.
    exact = parse_filter(text.replace("userName", "id", 1))
    assert not matches(exact, {"id": stored}, USER_TYPE)


def test_case_insensitive_strings_order_by_fold_key() -> None:
    # Precomposed and combining spellings are one key: equal, so "ge" and "le" both hold.
    assert fold_key(f"JOS{DECOMPOSED_E.upper()}") == "josé"
    for text in ('userName ge "josé"', 'userName le "josé"', 'userName ge "STRAßE"'):
        parsed = parse_filter(text)
        check_filter(parsed, USER_TYPE)
        stored = "Strasse" if "STRA" in text else f"JOS{DECOMPOSED_E.upper()}"
        assert matches(parsed, {"userName": stored}, USER_TYPE), text
