"""Configuration errors are one line naming the variable; secrets can come from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from scimflow.pipeline.settings import ApiServer, ConfigError, Settings


@pytest.mark.parametrize(("variable", "raw", "says"), [
    ("SCIMFLOW_API_THREADS", "lots", "expected a whole number"),
    ("SCIMFLOW_API_POOL_TIMEOUT", "soon", "expected a number"),
    ("SCIMFLOW_API_POOL_TIMEOUT", "nan", "expected a finite number"),
    ("SCIMFLOW_PGBOUNCER", "maybe", "expected one of 1, true"),
    ("SCIMFLOW_API_SERVER", "apache", "expected one of gunicorn, uwsgi"),
])
def test_a_bad_value_names_the_variable_and_what_was_expected(
    variable: str, raw: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({variable: raw})
    message = str(refused.value)
    assert message.startswith(f"{variable}={raw!r} is invalid: {says}")
    assert "\n" not in message


def test_booleans_read_both_ways() -> None:
    assert Settings.from_env({"SCIMFLOW_PGBOUNCER": "Yes"}).pgbouncer is True
    assert Settings.from_env({"SCIMFLOW_PGBOUNCER": "off"}).pgbouncer is False
    assert Settings.from_env({"SCIMFLOW_API_SERVER": "uwsgi"}).api_server is ApiServer.UWSGI


def test_a_value_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "database_url"
    secret.write_text("postgresql+psycopg://scimflow:s3cret@db/scimflow\n")
    settings = Settings.from_env({"SCIMFLOW_DATABASE_URL_FILE": str(secret),
                                  "SCIMFLOW_API_THREADS_FILE": str(_file(tmp_path, "4"))})
    assert settings.database_url == "postgresql+psycopg://scimflow:s3cret@db/scimflow"
    assert settings.api_threads == 4


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"SCIMFLOW_DATABASE_URL_FILE='.*nope' cannot be read"):
        Settings.from_env({"SCIMFLOW_DATABASE_URL_FILE": str(missing)})


def test_a_value_and_its_file_together_are_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both set"):
        Settings.from_env({"SCIMFLOW_BROKER_URL": "redis://x",
                           "SCIMFLOW_BROKER_URL_FILE": str(_file(tmp_path, "redis://y"))})


def test_production_processes_need_a_broker() -> None:
    with pytest.raises(ConfigError, match="SCIMFLOW_BROKER_URL is not set: `scimflow worker`"):
        Settings().require_broker("`scimflow worker`")
    Settings(broker_url="redis://127.0.0.1:6379/0").require_broker("`scimflow worker`")


def _file(directory: Path, content: str) -> Path:
    path = directory / f"value-{abs(hash(content))}"
    path.write_text(content)
    return path
