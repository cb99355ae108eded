"""RFC 7644 §3.4.2 query parameters, from a URL or a `/.search` body, into service arguments.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import falcon

from scimflow.pipeline.errors import InvalidSyntax, InvalidValue
from scimflow.pipeline.scim.render import Projection
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.services.reads import MEMBERSHIP_ATTRIBUTES as RESOURCE_MEMBERSHIPS
from scimflow.pipeline.services.reads import SearchQuery

SortOrder = Literal["ascending", "descending"]
AttributeNames = str | Sequence[str] | None

# Attributes rendered from the memberships table: loading them costs a query per page.
MEMBERSHIP_ATTRIBUTES = tuple(name for name, _ in RESOURCE_MEMBERSHIPS.values())

_INTEGER = re.compile(r"(?P<sign>[+-]?)0*(?P<digits>\d+)")
# Paging values are saturated to this bound: any larger startIndex is past the end of every
# result set anyway, and a startIndex plus a count stays within the 64-bit integers that
# PostgreSQL's OFFSET and SQLite accept (a larger one was a 500, not an empty page).
PAGING_BOUND = 2**62
_BOUND_DIGITS = len(str(PAGING_BOUND))


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A query's parameters, checked but not yet bound to a resource type."""

    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    sort_by: str | None = None
    sort_order: SortOrder = "ascending"
    attributes: AttributeNames = None
    excluded_attributes: AttributeNames = None

    def for_type(self, resource_type: ResourceType) -> tuple[SearchQuery, Projection]:
        shown = Projection.parse(resource_type, self.attributes, self.excluded_attributes)
        query = SearchQuery(
            filter=self.filter,
            start_index=self.start_index,
            count=self.count,
            sort_by=self.sort_by,
            sort_order=self.sort_order,
            with_memberships=renders_memberships(shown, resource_type),
        )
        return query, shown


def projection(req: falcon.Request, resource_type: ResourceType) -> Projection:
    """The `attributes` / `excludedAttributes` parameters of a request (RFC 7644 §3.9)."""
    return Projection.parse(
        resource_type, _param(req, "attributes"), _param(req, "excludedAttributes")
    )


def has_projection(req: falcon.Request) -> bool:
    return _param(req, "attributes") is not None or _param(req, "excludedAttributes") is not None


def renders_memberships(shown: Projection, resource_type: ResourceType) -> bool:
    """Whether `members` / `groups` will be rendered, i.e. whether they need loading at all."""
    return any(
        shown.wants(attribute, "")
        for name in MEMBERSHIP_ATTRIBUTES
        if (attribute := resource_type.schema.attribute(name)) is not None
    )


def search_from_params(req: falcon.Request, max_results: int) -> SearchRequest:
    """GET /Users?filter=…&startIndex=…&count=… (RFC 7644 §3.4.2)."""
    return SearchRequest(
        filter=_param(req, "filter"),
        start_index=_start_index(_integer_text(_param(req, "startIndex"), "startIndex")),
        count=_count(_integer_text(_param(req, "count"), "count"), max_results),
        sort_by=_param(req, "sortBy"),
        sort_order=_sort_order(_param(req, "sortOrder")),
        attributes=_param(req, "attributes"),
        excluded_attributes=_param(req, "excludedAttributes"),
    )


def search_from_body(body: Any, max_results: int) -> SearchRequest:
    """A POST …/.search SearchRequest body (RFC 7644 §3.4.3); the same names, JSON-typed."""
    if not isinstance(body, Mapping):
        raise InvalidSyntax("A search request body must be a JSON object.")
    return SearchRequest(
        filter=_string(body, "filter"),
        start_index=_start_index(_integer(body, "startIndex")),
        count=_count(_integer(body, "count"), max_results),
        sort_by=_string(body, "sortBy"),
        sort_order=_sort_order(_string(body, "sortOrder")),
        attributes=_names(body, "attributes"),
        excluded_attributes=_names(body, "excludedAttributes"),
    )


def _param(req: falcon.Request, name: str) -> str | None:
    # A blank parameter (`filter=`) is treated as absent rather than as an empty filter.
    value = req.get_param(name)
    return value if value and value.strip() else None


def _integer_text(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    match = _INTEGER.fullmatch(text.strip())
    if match is None:
        raise InvalidValue(f"{name} must be an integer.")
    sign = -1 if match["sign"] == "-" else 1
    digits = match["digits"]
    # Never int() on thousands of digits (slow, and refused beyond Python's digit limit):
    # a number longer than the bound's is beyond it.
    if len(digits) > _BOUND_DIGITS:
        return sign * PAGING_BOUND
    return _saturated(sign * int(digits))


def _integer(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{name} must be an integer.")
    return _saturated(value)


def _saturated(value: int) -> int:
    return max(-PAGING_BOUND, min(value, PAGING_BOUND))


def _string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string.")
    return value


def _names(body: Mapping[str, Any], name: str) -> AttributeNames:
    # RFC 7644 §3.4.3 makes these arrays of strings; a comma-separated string is read the same.
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise InvalidValue(f"{name} must be an array of attribute names.")


def _start_index(value: int | None) -> int:
    # RFC 7644 §3.4.2.4: a value less than 1 is interpreted as 1; values are already within
    # PAGING_BOUND, past the end of any result set.
    return 1 if value is None else max(1, value)


def _count(value: int | None, max_results: int) -> int | None:
    # RFC 7644 §3.4.2.4: negative means 0; the service may return fewer than asked.
    return None if value is None else min(max(0, value), max_results)


def _sort_order(value: str | None) -> SortOrder:
    order = (value or "ascending").strip().lower()
    if order == "ascending":
        return "ascending"
    if order == "descending":
        return "descending"
    raise InvalidValue("sortOrder must be 'ascending' or 'descending'.")
