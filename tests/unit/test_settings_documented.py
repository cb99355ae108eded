"""Every setting is documented in the README's configuration reference, and read from env."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from scimflow.pipeline.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")


@pytest.mark.parametrize("name", [field.name for field in fields(Settings)])
def test_every_setting_is_in_the_readme(name: str) -> None:
    variable = f"SCIMFLOW_{name.upper()}"
    short = "_" + name.upper().split("_")[-1]  # `SCIMFLOW_API_POOL_SIZE` / `_OVERFLOW` rows
    assert variable in README or (short in README and name.startswith(("api_pool", "retry")))


def test_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"SCIMFLOW_DRAIN_BATCH_SIZE": "50", "SCIMFLOW_ACCESS_LOG": "1",
                                  "SCIMFLOW_PASSWORD_POLICY": "ignore"})
    assert settings.drain_batch_size == 50
    assert settings.access_log is True
    assert settings.password_policy == "ignore"


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ValueError, match="SCIMFLOW_DRAIN_BATCH_SIZE"):
        Settings.from_env({"SCIMFLOW_DRAIN_BATCH_SIZE": "many"})
