"""Templates and the filters they format with: times in UTC with their age, durations, rates.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import falcon
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from scimflow.api.console.services import ConsoleServices

HTML = "text/html; charset=utf-8"


def utc_text(moment: datetime | None) -> str:
    """`2026-12-04 14:52:07Z`, or an em dash for nothing."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration_text(seconds: float | None) -> str:
    """`0.4 s`, `12 s`, `3 min`, `2 h 5 min`, `3 d 4 h`."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def age_text(moment: datetime | None, now: datetime) -> str:
    """How long ago, as `3 min ago` (`in 5 s` for a moment still ahead)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return f"in {duration_text(-seconds)}"
    return f"{duration_text(seconds)} ago"


def rate_text(per_second: float) -> str:
    return f"{per_second:.1f}/s" if per_second < 100 else f"{per_second:.0f}/s"


class Pages:
    """Renders the console's templates into responses."""

    def __init__(self, services: ConsoleServices) -> None:
        self._services = services
        self._env = Environment(
            loader=PackageLoader("scimflow.api.console", "templates"),
            autoescape=select_autoescape(["html"], default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["utc"] = utc_text
        self._env.filters["duration"] = duration_text
        self._env.filters["rate"] = rate_text
        self._env.globals["root"] = services.root

    def render(self, resp: falcon.Response, template: str, *,
               status: int = 200, **context: Any) -> None:
        now = self._services.now()
        context.setdefault("visitor", None)
        context.setdefault("refresh", None)
        resp.status = status
        resp.content_type = HTML
        resp.text = self._env.get_template(template).render(
            now=now, age=lambda moment: age_text(moment, now), **context
        )
