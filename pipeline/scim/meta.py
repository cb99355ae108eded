"""How a resource's `meta` timestamps and version are written (RFC 7643 §2.3.5, §3.1; RFC 7644
§3.14): the one formatting of what responses show and what filters evaluated in memory see, so
`meta.created sw "<a rendered value>"` matches the resource it was read from.
"""

from __future__ import annotations

from datetime import UTC, datetime


def scim_datetime(moment: datetime) -> str:
    """An xsd:dateTime in UTC to the millisecond with a 'Z'; a naive `moment` is taken as UTC
    (SQLite returns timestamps without their zone)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def weak_etag(version: int) -> str:
    """A resource version as its weak entity tag, `W/"<version>"` (RFC 7232 §2.3)."""
    return f'W/"{version}"'
