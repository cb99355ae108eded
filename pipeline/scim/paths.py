"""SCIM attribute paths (RFC 7644 §3.10).
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").

Grammar (RFC 7644 §3.4.2.2 Figure 1):

    attrPath  = [URI ":"] ATTRNAME *1subAttr
    ATTRNAME  = ALPHA *(nameChar)            ; plus "$ref" (RFC 7643 §2.3.7 "$ref" sub-attributes)
    nameChar  = "-" / "_" / DIGIT / ALPHA
    subAttr   = "." ATTRNAME

Schema URNs contain ':' themselves, so an attribute path is split at the *last* ':' whose
remainder is a valid `ATTRNAME[.subAttr]`. That is always right when an attribute follows the
URN, but a bare URN naming a whole extension (a valid PATCH target, RFC 7644 §3.5.2.1) looks
exactly like `URN:attr`: "urn:...:enterprise:2.0:User" would split into urn "urn:...:2.0" and
name "User". Callers that know the resource type's schema URNs pass them as `known_urns`:

* text equal (case-insensitively) to a known URN parses as `AttrPath(urn=text, name="", sub=None)`,
  meaning "the whole extension";
* text starting with a known URN plus ':' is split right after that URN.

URNs are kept exactly as written; compare them case-insensitively (RFC 8141 §3.1 lets the
namespace part vary in case, and `ResourceType.schema_for` already does).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from scimflow.pipeline.errors import InvalidPath

MAX_PATH_LENGTH: Final = 4096

# Regex building blocks shared with the filter tokenizer (pipeline.scim.filters).
ATTRNAME_PATTERN: Final = r"(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)"
# A URI scheme, ':', then any characters that cannot end or structure a filter token.
URI_PATTERN: Final = r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\"()\[\]]*"
ATTR_PATH_PATTERN: Final = (
    rf"(?:(?P<urn>{URI_PATTERN}):)?(?P<name>{ATTRNAME_PATTERN})(?:\.(?P<sub>{ATTRNAME_PATTERN}))?"
)

_ATTR_PATH_RE: Final = re.compile(ATTR_PATH_PATTERN)
_NAME_AND_SUB_RE: Final = re.compile(
    rf"(?P<name>{ATTRNAME_PATTERN})(?:\.(?P<sub>{ATTRNAME_PATTERN}))?"
)


@dataclass(frozen=True, slots=True)
class AttrPath:
    """An attribute reference, `[urn:]name[.sub]` (RFC 7644 §3.10).

    `name == ""` (with a URN) is the whole-extension form; see the module docstring.
    """

    urn: str | None
    name: str
    sub: str | None


def parse_attr_path(text: str, known_urns: Collection[str] = ()) -> AttrPath:
    """Parse `[URI ":"] ATTRNAME [. subAttr]` (RFC 7644 §3.10); raise InvalidPath otherwise."""
    if not isinstance(text, str) or len(text) > MAX_PATH_LENGTH:
        raise InvalidPath("The attribute path is not a string of acceptable length.")
    known = _split_known_urn(text, known_urns)
    if known is not None:
        return known
    match = _ATTR_PATH_RE.fullmatch(text)
    if match is None:
        raise InvalidPath(f"Malformed attribute path {brief(text)}.")
    return AttrPath(match["urn"], match["name"], match["sub"])


def render_attr_path(path: AttrPath) -> str:
    """Render the canonical text of an attribute path; inverse of `parse_attr_path`."""
    if not path.name:
        return path.urn or ""
    text = path.name if path.sub is None else f"{path.name}.{path.sub}"
    return text if path.urn is None else f"{path.urn}:{text}"


def _split_known_urn(text: str, known_urns: Collection[str]) -> AttrPath | None:
    """Split `text` after the longest known schema URN it starts with, if any."""
    lowered = text.lower()
    for urn in sorted(known_urns, key=len, reverse=True):
        if lowered == urn.lower():
            return AttrPath(text, "", None)
        if lowered.startswith(urn.lower() + ":"):
            rest = _NAME_AND_SUB_RE.fullmatch(text, len(urn) + 1)
            if rest is not None:
                return AttrPath(text[: len(urn)], rest["name"], rest["sub"])
    return None


def brief(text: str, limit: int = 80) -> str:
    """Quote client text for an error detail without echoing an arbitrarily long input."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
