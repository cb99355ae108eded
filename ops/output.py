"""What every operator command prints: JSON for scripts, or text for people.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from scimflow.pipeline.settings import Settings


def emit(value: Any, as_json: bool, text: str) -> None:
    print(json.dumps(value, default=_json_default, indent=2) if as_json else text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def base_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/scim/v2"


def moment(value: datetime | None) -> str:
    """A timestamp for a text table, to the second; `-` when there is none."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
