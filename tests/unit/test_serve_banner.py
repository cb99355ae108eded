"""The embedded server tells a newcomer a command that works from where they are."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scimflow.ops.serve import database_name, invocation
from scimflow.pipeline.settings import Settings


def test_a_script_not_on_path_is_named_by_its_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / ".venv" / "bin" / "scimflow"
    script.parent.mkdir(parents=True)
    script.write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setattr(sys, "argv", [str(script), "serve"])
    assert invocation() == ".venv/bin/scimflow"


def test_a_script_on_path_is_named_by_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "bin" / "scimflow"
    script.parent.mkdir()
    script.write_text("")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(script.parent))
    monkeypatch.setattr(sys, "argv", [str(script), "serve"])
    assert invocation() == "scimflow"


def test_a_module_run_is_named_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/src/scimflow/__main__.py", "serve"])
    assert invocation() == f"{Path(sys.executable).name} -m scimflow"


def test_a_relative_sqlite_database_is_shown_as_an_absolute_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_name(Settings()) == str(tmp_path / "scimflow.sqlite3")
    postgres = Settings(database_url="postgresql+psycopg://app:secret@db/scimflow")
    assert database_name(postgres) == "postgresql+psycopg://app:***@db/scimflow"
