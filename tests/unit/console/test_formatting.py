"""How the console writes times, ages, durations and rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scimflow.api.console.render import age_text, duration_text, rate_text, utc_text

NOW = datetime(2026, 12, 4, 15, 0, 0, tzinfo=UTC)


def test_times_are_utc_whatever_their_zone() -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    assert utc_text(paris) == "2026-12-04 15:00:00Z"
    assert utc_text(NOW.replace(tzinfo=None)) == "2026-12-04 15:00:00Z"
    assert utc_text(None) == "—"


@pytest.mark.parametrize(("seconds", "text"), [
    (0.42, "0.4 s"), (12.4, "12 s"), (75, "1 min"), (3600, "1 h"), (7500, "2 h 5 min"),
    (86400 * 3 + 3600 * 4, "3 d 4 h"), (86400 * 2, "2 d"), (None, "—"),
])
def test_durations(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_ages_say_ago_or_in() -> None:
    assert age_text(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert age_text(NOW + timedelta(seconds=5), NOW) == "in 5.0 s"
    assert age_text(None, NOW) == ""


def test_rates() -> None:
    assert rate_text(12.46) == "12.5/s"
    assert rate_text(1234.4) == "1234/s"
