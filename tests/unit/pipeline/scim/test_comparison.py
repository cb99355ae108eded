"""The comparison and ordering rules shared by filters and sortBy (RFC 7644 §3.4.2.2, §3.4.2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from scimflow.pipeline.scim.comparison import comparable, compare, parse_datetime
from scimflow.pipeline.scim.schema import Attribute, AttrType

NAME = Attribute("name", AttrType.STRING)
CODE = Attribute("code", AttrType.STRING, case_exact=True)
WHEN = Attribute("when", AttrType.DATETIME)
ACTIVE = Attribute("active", AttrType.BOOLEAN)
COUNT = Attribute("count", AttrType.INTEGER)
BADGE = Attribute("badge", AttrType.BINARY, case_exact=True)


def test_datetimes_are_utc_instants_and_a_missing_offset_means_utc() -> None:
    assert parse_datetime("2026-03-04T07:06:07.123+02:00") == datetime(
        2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC
    )
    assert parse_datetime("2026-03-04T05:06:07") == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert parse_datetime("yesterday") is None


def test_an_instant_beyond_utc_years_keeps_its_offset_and_still_orders() -> None:
    late = parse_datetime("9999-12-31T23:00:00-05:00")
    assert late is not None and late.utcoffset() == timedelta(hours=-5)
    assert late.tzinfo == timezone(timedelta(hours=-5))
    assert compare(WHEN, "gt", "9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59Z")


@pytest.mark.parametrize(
    ("attr", "op", "stored", "wanted", "expected"),
    [
        (NAME, "eq", "Straße", "STRASSE", True),  # folded unless caseExact
        (CODE, "eq", "Abc", "abc", False),
        (NAME, "gt", "b", "A", True),
        (CODE, "gt", "b", "A", True),  # code points: "b" > "A"
        (CODE, "lt", "B", "a", True),
        (NAME, "sw", "Barbara", "BAR", True),
        (WHEN, "eq", "2026-03-04T07:06:07+02:00", "2026-03-04T05:06:07Z", True),
        (WHEN, "lt", "2026-03-04T05:06:07Z", "2026-03-04T05:06:07.001Z", True),
        (WHEN, "sw", "2026-03-04T05:06:07Z", "2026-03-04", True),  # text, not instant
        (WHEN, "eq", "not a time", "not a time", False),
        (ACTIVE, "eq", True, True, True),
        (ACTIVE, "gt", True, False, False),  # booleans are not ordered
        (ACTIVE, "eq", 1, True, False),
        (COUNT, "ge", 2, 1.5, True),
        (COUNT, "eq", True, 1, False),  # a boolean is no number
        (COUNT, "co", 12, 1, False),
        (BADGE, "eq", "QUJD", "QUJD", True),
        (BADGE, "gt", "QUJE", "QUJD", False),  # binaries are not ordered
        (NAME, "eq", 5, "5", False),  # the wrong JSON type compares with nothing
    ],
)
def test_values_compare_by_the_attribute_type(
    attr: Attribute, op: str, stored: Any, wanted: Any, expected: bool
) -> None:
    assert compare(attr, op, stored, wanted) is expected


def test_sort_keys_follow_the_same_rules() -> None:
    assert comparable(NAME, "Straße") == comparable(NAME, "STRASSE")
    assert comparable(CODE, "Abc") == "Abc"
    assert comparable(WHEN, "2026-03-04T07:06:07+02:00") == datetime(
        2026, 3, 4, 5, 6, 7, tzinfo=UTC
    )
    assert comparable(COUNT, True) is None
    assert comparable(ACTIVE, "true") is None
    assert sorted(["b", "C", "a"], key=lambda v: comparable(NAME, v)) == ["a", "b", "C"]
