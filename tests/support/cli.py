"""Running the `scimflow` command in-process, as the console script does, for CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest

from scimflow.ops.cli import main

Run = tuple[int, str, str]


class Cli(Protocol):
    def __call__(self, *argv: str) -> Run: ...


def cli_in(directory: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> Cli:
    """`cli(*argv)` -> (exit code, stdout, stderr), run in `directory` with default settings
    (the database is `./scimflow.sqlite3` there)."""
    for name in ("SCIMFLOW_DATABASE_URL", "SCIMFLOW_BROKER_URL", "SCIMFLOW_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(directory)

    def run(*argv: str) -> Run:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
