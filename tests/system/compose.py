"""The production commands, read from docker-compose.yml so tests run exactly those."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def load_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    return document


def service_command(service: str) -> list[str]:
    """The `command` of a compose service, as an argv list."""
    command = load_compose()["services"][service]["command"]
    assert isinstance(command, list), f"{service}: use the exec (list) form of command"
    return [str(part) for part in command]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """Replace (or add) `option value` in an argv: e.g. bind the API to a free local port."""
    out = list(argv)
    if option in out:
        out[out.index(option) + 1] = value
    else:
        out += [option, value]
    return out
