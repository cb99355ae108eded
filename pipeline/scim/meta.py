"""How a resource's `meta` timestamps and version are written and read back (RFC 7643 §2.3.5,
§3.1; RFC 7644 §3.14): one formatting for responses and for filters evaluated in memory, so
`meta.created sw "<a rendered value>"` matches the resource it was read from, and one reading of
the ETags clients send back.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").
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


def names_version(header: str, version: int) -> bool:
    """Whether an `If-Match` / `If-None-Match` value names this version: `*`, or one of its
    comma-separated tags, weak or strong (RFC 7232 §3.1, §3.2; weak comparison)."""
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    return "*" in tags or str(version) in tags
