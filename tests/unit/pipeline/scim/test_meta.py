"""How meta timestamps and versions are written (RFC 7643 §2.3.5, §3.1; RFC 7644 §3.14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scimflow.pipeline.scim.meta import names_version, scim_datetime, weak_etag


def test_timestamps_are_utc_to_the_millisecond_with_a_z() -> None:
    assert scim_datetime(datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)) == (
        "2026-03-04T05:06:07.123Z"
    )
    assert scim_datetime(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)) == "2026-03-04T05:06:07.000Z"


def test_naive_timestamps_are_utc_and_other_zones_are_converted() -> None:
    assert scim_datetime(datetime(2026, 3, 4, 5, 6, 7, 999999)) == "2026-03-04T05:06:07.999Z"
    plus_two = timezone(timedelta(hours=2))
    assert scim_datetime(datetime(2026, 3, 4, 7, 6, 7, tzinfo=plus_two)) == (
        "2026-03-04T05:06:07.000Z"
    )


def test_a_version_is_a_weak_etag() -> None:
    assert weak_etag(7) == 'W/"7"'


@pytest.mark.parametrize(
    ("header", "named"),
    [('W/"3"', True), ('"3"', True), ('W/"2", W/"3"', True), ("*", True), (' W/"3" ', True),
     ('W/"4"', False), ('W/"33"', False), ("", False)],
)
def test_an_if_match_header_names_a_version_weakly(header: str, named: bool) -> None:
    assert names_version(header, 3) is named
