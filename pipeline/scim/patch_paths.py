"""PATCH operation paths (RFC 7644 §3.5.2): an attribute path, or a value path with a filter.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").

    PATH      = attrPath / valuePath [subAttr]
    valuePath = attrPath "[" valFilter "]"

Attribute paths come from `paths.py`, the bracketed filter from the filter grammar
(`filters.py`); a malformed filter stays invalidFilter (RFC 7644 Table 9, PATCH path filters).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from scimflow.pipeline.errors import InvalidPath
from scimflow.pipeline.scim.filters import Filter, parse_value_filter, render_filter
from scimflow.pipeline.scim.paths import (
    ATTRNAME_PATTERN,
    MAX_PATH_LENGTH,
    AttrPath,
    brief,
    parse_attr_path,
    render_attr_path,
)

# The ".subAttr" that may follow the closing bracket of a PATCH valuePath.
_TRAILING_SUB_RE: Final = re.compile(rf"\]\.(?P<sub>{ATTRNAME_PATTERN})\Z")


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH operation's "path" (RFC 7644 §3.5.2): `attrPath / valuePath [subAttr]`.

    For a plain attrPath, `value_filter` and `sub` are None and any sub-attribute is `attr.sub`.
    For a valuePath, `attr.sub` is None, `value_filter` holds the bracketed filter (whose paths
    are relative to `attr`) and `sub` the optional ".subAttr" after the ']'.
    """

    attr: AttrPath
    value_filter: Filter | None
    sub: str | None


def parse_path(text: str, known_urns: Collection[str] = ()) -> PatchPath:
    """Parse a PATCH "path" (RFC 7644 §3.5.2).

    Raises InvalidPath for a malformed path and InvalidFilter for a malformed bracketed value
    filter (RFC 7644 Table 9 lists invalidFilter for "PATCH (Path Filter)").
    """
    if not isinstance(text, str) or len(text) > MAX_PATH_LENGTH:
        raise InvalidPath("The path is not a string of acceptable length.")
    open_at = text.find("[")
    if open_at < 0:
        return PatchPath(parse_attr_path(text, known_urns), None, None)
    attr = parse_attr_path(text[:open_at], known_urns)
    if attr.sub is not None or not attr.name:
        raise InvalidPath(f"Only a multi-valued attribute can be filtered: {brief(text)}.")
    inner, sub = _split_value_path_tail(text, open_at)
    return PatchPath(attr, parse_value_filter(inner), sub)


def render_path(path: PatchPath) -> str:
    """Render the canonical text of a PATCH path; inverse of `parse_path`."""
    text = render_attr_path(path.attr)
    if path.value_filter is not None:
        text = f"{text}[{render_filter(path.value_filter)}]"
    return text if path.sub is None else f"{text}.{path.sub}"


def _split_value_path_tail(text: str, open_at: int) -> tuple[str, str | None]:
    """Return the text between '[' and the final ']' and the optional ".subAttr" after it.

    The valFilter grammar has no nested brackets and strings are quoted, so the bracket that
    closes the value path is the last ']' in the text; the filter parser rejects the rest.
    """
    if text.endswith("]"):
        return text[open_at + 1 : -1], None
    tail = _TRAILING_SUB_RE.search(text, open_at)
    if tail is None:
        raise InvalidPath(f"Malformed value path {brief(text)}.")
    return text[open_at + 1 : tail.start()], tail["sub"]
