"""The CLI fails in one line that says what to fix: a setting, a missing broker, a database."""

from __future__ import annotations

import pytest

from scimflow.ops.cli import main
from tests.support.services import free_port


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_a_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCIMFLOW_API_THREADS", "lots")
    code, err = run(["status"], capsys)
    assert (code, err) == (2, "error: SCIMFLOW_API_THREADS='lots' is invalid: "
                              "expected a whole number\n")


@pytest.mark.parametrize("command", ["api", "worker", "beat"])
def test_production_processes_refuse_to_start_without_a_broker(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SCIMFLOW_BROKER_URL", raising=False)
    code, err = run([command], capsys)
    assert code == 2
    assert err.startswith(f"error: SCIMFLOW_BROKER_URL is not set: `scimflow {command}` needs")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_refuse_to_start_without_a_password_key(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCIMFLOW_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("SCIMFLOW_PASSWORD_KEY", raising=False)
    monkeypatch.delenv("SCIMFLOW_PASSWORD_POLICY", raising=False)
    code, err = run([command], capsys)
    assert code == 2
    assert err.startswith(f"error: SCIMFLOW_PASSWORD_KEY is not set: `scimflow {command}` needs")
    assert err.count("\n") == 1


def test_an_unreachable_database_is_named_with_the_cause_and_no_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("SCIMFLOW_DATABASE_URL",
                       f"postgresql+psycopg://scimflow:hunter2@127.0.0.1:{port}/scimflow")
    code, err = run(["status"], capsys)
    assert code == 1
    assert err.startswith(f"error: cannot use the database postgresql+psycopg://scimflow:***@"
                          f"127.0.0.1:{port}/scimflow: ")
    assert "refused" in err.lower() and "hunter2" not in err
    assert err.count("\n") == 1
