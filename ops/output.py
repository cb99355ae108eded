"""What every operator command prints: JSON for scripts, or text for people.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from scimflow.pipeline.errors import InvalidValue, NotFound
from scimflow.pipeline.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]

# What a command's services raise for an operator's mistake (a typo, a value refused).
OPERATOR_ERRORS = (LookupError, ValueError, NotFound, InvalidValue)


def operator_errors(handler: Handler) -> Handler:
    """The handler, with an operator's mistake printed on stderr as exit code 2."""

    @functools.wraps(handler)
    def run(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return handler(settings, args)
        except OPERATOR_ERRORS as error:
            detail = error.detail if isinstance(error, (NotFound, InvalidValue)) else str(error)
            print(f"error: {detail}", file=sys.stderr)
            return 2

    return run


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
