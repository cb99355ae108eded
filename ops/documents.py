"""JSON documents the operator hands to a command (a schema, a captured request body).
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


class UnreadableDocument(Exception):
    """A file that cannot be read or is not JSON: one line naming the file and why."""


def read_json(path: Path) -> Any:
    """The parsed document; `-` reads standard input."""
    name = "standard input" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as ex:
        reason = ex.strerror if isinstance(ex, OSError) and ex.strerror else str(ex)
        raise UnreadableDocument(f"cannot read {name}: {reason}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as ex:
        raise UnreadableDocument(
            f"{name} is not JSON: {ex.msg} at line {ex.lineno} column {ex.colno}"
        ) from None
