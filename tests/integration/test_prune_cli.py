"""`scimflow prune` on a migrated SQLite file: one line per table, or JSON; dry runs; 0 days.

Each command runs in-process through `scimflow.ops.cli.main`, exactly as the console script does.
The rows are written in SQL with the ages a real pipeline would give them weeks ago.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select

from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.store.models import (
    DeadLetter,
    JournalEntry,
    LoginDecision,
    OutboxEvent,
    Tenant,
    WebhookAttempt,
)
from tests.support.cli import Cli, cli_in


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a migrated SQLite file with history."""
    run = cli_in(tmp_path, monkeypatch, capsys)
    assert run("migrate")[0] == 0
    _write_history(tmp_path / "scimflow.sqlite3")
    return run


def _write_history(database: Path) -> None:
    """3 applied entries, 2 events, 2 webhook attempts, 2 dead letters and 2 login decisions,
    all weeks old, plus what stays: a pending entry (the newest), a recent event, attempt and
    login decision, the newest dead letter."""
    long_ago = utc_now() - timedelta(days=60)
    entry = {"tenant_id": "t", "resource_type": "User", "kind": "create", "command": {},
             "lane": 1, "attempts": 0, "request_id": "", "created_at": long_ago}
    event = {"tenant_id": "t", "event_type": "user.created", "resource_type": "User",
             "resource_id": "r", "journal_seq": 4, "payload": {}, "created_at": long_ago}
    attempt = {"endpoint_id": "we_1", "event_position": 1, "event_id": "evt_1",
               "attempted_at": long_ago, "status_code": 200, "latency_ms": 1.0}
    letter = {"journal_seq": 4, "tenant_id": "t", "resource_id": "r", "reason": "test",
              "created_at": long_ago}
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(insert(Tenant).values(id="t", name="acme", created_at=long_ago))
        connection.execute(insert(JournalEntry), [
            {**entry, "resource_id": f"r{i}", "status": "applied", "applied_at": long_ago}
            for i in range(3)
        ] + [{**entry, "resource_id": "r3", "status": "pending", "applied_at": None}])
        connection.execute(insert(OutboxEvent), [
            {**event, "id": 1, "event_id": "evt_1"}, {**event, "id": 2, "event_id": "evt_2"},
            {**event, "id": 3, "event_id": "evt_3", "created_at": utc_now()},
        ])
        connection.execute(insert(WebhookAttempt), [
            attempt, attempt, {**attempt, "attempted_at": utc_now()},
        ])
        connection.execute(insert(DeadLetter), [letter, letter])
        decision = {"tenant_id": "t", "user_id": "r", "issuer": "https://idp", "subject": "s",
                    "policy": "jit-then-scim", "decision": "allow", "reason": "allowed",
                    "action": "none", "request_id": "", "created_at": long_ago}
        connection.execute(insert(LoginDecision), [
            decision, decision, {**decision, "created_at": utc_now()}])
    engine.dispose()


def _row_counts() -> tuple[int, int, int, int]:
    engine = create_engine("sqlite:///scimflow.sqlite3")
    with engine.connect() as connection:
        found = tuple(connection.scalar(select(func.count()).select_from(model)) or 0
                      for model in (JournalEntry, OutboxEvent, DeadLetter, LoginDecision))
    engine.dispose()
    return found  # type: ignore[return-value]


def test_a_dry_run_prints_one_line_per_table_and_deletes_nothing(cli: Cli) -> None:
    code, out, err = cli("prune", "--dry-run")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "journal          would delete 3 applied entries older than 7 days",
        "outbox           would delete 2 events older than 7 days",
        "webhook_attempts would delete 2 webhook attempts older than 7 days",
        "dead_letters     would delete 1 dead letters older than 30 days",
        "login_decisions  would delete 2 login decisions older than 7 days",
    ]
    assert _row_counts() == (4, 3, 2, 3)


def test_prune_deletes_and_prints_json_then_finds_nothing_more(cli: Cli) -> None:
    code, out, _ = cli("prune", "--json")

    assert code == 0
    assert json.loads(out) == {"journal": 3, "outbox": 2, "webhook_attempts": 2,
                               "dead_letters": 1, "login_decisions": 2, "dry_run": False}
    assert _row_counts() == (1, 1, 1, 1)
    assert json.loads(cli("prune", "--json")[1]) == {
        "journal": 0, "outbox": 0, "webhook_attempts": 0, "dead_letters": 0,
        "login_decisions": 0, "dry_run": False}


def test_zero_days_is_printed_as_kept_forever(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIMFLOW_RETENTION_OUTBOX_DAYS", "0")

    out = cli("prune")[1].splitlines()

    assert out[1] == "outbox           kept forever (SCIMFLOW_RETENTION_OUTBOX_DAYS=0)"
    assert out[0] == "journal          deleted 3 applied entries older than 7 days"
    assert _row_counts() == (1, 3, 1, 1)


def test_an_unusable_retention_setting_is_one_line_and_exit_2(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIMFLOW_RETENTION_BATCH_SIZE", "0")

    assert cli("prune") == (2, "", "error: SCIMFLOW_RETENTION_BATCH_SIZE must be 1 or more\n")
    assert _row_counts() == (4, 3, 2, 3)
