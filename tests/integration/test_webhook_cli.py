"""`scimflow webhook …` on a migrated SQLite file: adding (and the SSRF refusals, exit code 2),
listing, rotating the secret, disabling and enabling, replaying, and the delivery attempts.

Each command runs in-process through `scimflow.ops.cli.main`, exactly as the console script does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.store import outbox
from scimflow.pipeline.store.event_tables import WebhookAttempt, WebhookEndpoint
from tests.support.cli import Cli, cli_in

PUBLIC_URL = "https://93.184.216.34/hooks/scim"
HINT = "set SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow private destinations"
DATABASE = "sqlite:///scimflow.sqlite3"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on a migrated SQLite file with one tenant, acme; private networks refused."""
    monkeypatch.delenv("SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS", raising=False)
    run = cli_in(tmp_path, monkeypatch, capsys)
    assert run("migrate")[0] == 0
    assert run("tenant", "create", "acme")[0] == 0
    return run


def _add(cli: Cli, *argv: str) -> dict[str, Any]:
    code, out, err = cli("webhook", "add", "acme", PUBLIC_URL, "--json", *argv)
    assert (code, err) == (0, "")
    added: dict[str, Any] = json.loads(out)
    return added


def _execute(statement: Any) -> None:
    engine = create_engine(DATABASE)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def _endpoint(endpoint_id: str) -> dict[str, Any]:
    engine = create_engine(DATABASE)
    with engine.connect() as connection:
        row = connection.execute(
            select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        ).mappings().one()
    engine.dispose()
    return dict(row)


def _append_events(tenant_id: str, *moments: datetime) -> list[str]:
    ids = [f"evt_{index:032x}" for index in range(len(moments))]
    rows = [{"event_id": event_id, "tenant_id": tenant_id, "event_type": "user.created",
             "resource_type": "User", "resource_id": "r1", "journal_seq": 1, "payload": {},
             "created_at": moment} for event_id, moment in zip(ids, moments, strict=True)]
    engine = create_engine(DATABASE)
    with engine.begin() as connection:
        outbox.append(Session(bind=connection), rows)
    engine.dispose()
    return ids


@pytest.mark.parametrize(("url", "refusal"), [
    ("http://127.0.0.1/", "webhook destination 127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data",
     "webhook destination 169.254.169.254 is a link-local address"),
    ("http://10.0.0.1/", "webhook destination 10.0.0.1 is a private address"),
    ("http://localhost/", "webhook destination localhost is a loopback address"),
])
def test_internal_destinations_are_refused_with_exit_code_2_unless_allowed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, url: str, refusal: str
) -> None:
    assert cli("webhook", "add", "acme", url) == (2, "", f"error: {refusal}; {HINT}\n")
    assert cli("webhook", "list") == (0, "(no webhook endpoints)\n", "")

    monkeypatch.setenv("SCIMFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    code, out, err = cli("webhook", "add", "acme", url)
    assert (code, err) == (0, "")
    assert f"url:      {url}\n" in out
    assert json.loads(cli("webhook", "list", "--json")[1])[0]["url"] == url


def test_add_prints_the_id_and_the_secret_once_and_list_never_shows_it(cli: Cli) -> None:
    code, out, err = cli("webhook", "add", "acme", PUBLIC_URL, "--events", "user.*,group.*")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("endpoint: we_") and lines[0].endswith(" (tenant acme)")
    assert lines[2] == "events:   user.*,group.* (json)"
    secret = lines[3].removeprefix("secret:   ")
    assert secret.startswith("whsec_")
    assert lines[4] == ("The secret is shown once; give it to the receiver to verify "
                        "signatures now.")

    added = _add(cli, "--format", "set")
    assert added["id"].startswith("we_") and added["secret"].startswith("whsec_")
    assert (added["format"], added["events"], added["cursor"]) == ("set", ["*"], 0)

    code, out, _ = cli("webhook", "list", "acme")
    assert code == 0 and secret not in out and added["secret"] not in out
    assert out.splitlines()[0].split() == ["ID", "TENANT", "URL", "EVENTS", "FORMAT", "STATE",
                                           "CURSOR", "BACKLOG", "FAILURES", "NEXT", "ATTEMPT"]
    assert len(out.splitlines()) == 3
    listed = json.loads(cli("webhook", "list", "--json")[1])
    assert all("secret" not in json.dumps(endpoint) for endpoint in listed)


@pytest.mark.parametrize(("argv", "message"), [
    (("webhook", "add", "initech", PUBLIC_URL), "error: No tenant 'initech'.\n"),
    (("webhook", "add", "acme", PUBLIC_URL, "--events", "users.*"),
     "error: 'users.*' names no event type; known types: "),
    (("webhook", "list", "initech"), "error: No tenant 'initech'.\n"),
    (("webhook", "remove", "we_missing"),
     "error: No webhook endpoint 'we_missing' (`scimflow webhook list` shows them).\n"),
    (("webhook", "enable", "we_missing"), "error: No webhook endpoint 'we_missing'"),
    (("webhook", "disable", "we_missing"), "error: No webhook endpoint 'we_missing'"),
    (("webhook", "rotate-secret", "we_missing"), "error: No webhook endpoint 'we_missing'"),
    (("webhook", "replay", "we_missing", "--since", "2026-01-01T00:00:00Z"),
     "error: No webhook endpoint 'we_missing'"),
    (("webhook", "deliveries", "we_missing"), "error: No webhook endpoint 'we_missing'"),
])
def test_operator_mistakes_are_said_on_stderr_with_exit_code_2(
    cli: Cli, argv: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert err.startswith(message)


def test_rotate_secret_keeps_the_old_secret_until_the_overlap_ends(cli: Cli) -> None:
    added = _add(cli)
    code, out, err = cli("webhook", "rotate-secret", added["id"], "--overlap-hours", "2",
                         "--json")
    assert (code, err) == (0, "")
    rotated = json.loads(out)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != added["secret"]

    secrets = _endpoint(added["id"])["secrets"]
    assert [entry["secret"] for entry in secrets] == [rotated["secret"], added["secret"]]
    assert secrets[0]["expires_at"] is None
    expires = datetime.fromisoformat(secrets[1]["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)

    code, out, _ = cli("webhook", "rotate-secret", added["id"])
    assert code == 0 and "for the next 24 h, with the older secrets too" in out


def test_disable_then_enable_clears_the_backoff(cli: Cli) -> None:
    endpoint_id = _add(cli)["id"]
    assert cli("webhook", "disable", endpoint_id, "--reason", "receiver down")[:2] == (
        0, f"webhook endpoint {endpoint_id} disabled; 0 event(s) wait for "
           "`scimflow webhook enable`\n")
    assert "disabled: receiver down" in cli("webhook", "list")[1]
    _execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(
        failures=7, failing_since=datetime.now(UTC),
        next_attempt_at=datetime.now(UTC) + timedelta(hours=1)))

    assert cli("webhook", "enable", endpoint_id)[:2] == (
        0, f"webhook endpoint {endpoint_id} enabled; 0 event(s) to deliver\n")

    endpoint = _endpoint(endpoint_id)
    assert (endpoint["disabled_at"], endpoint["disabled_reason"]) == (None, None)
    assert (endpoint["failures"], endpoint["failing_since"], endpoint["next_attempt_at"]) == (
        0, None, None)


def test_replay_by_time_and_by_event_id_moves_the_cursor_back(cli: Cli) -> None:
    tenant_id = json.loads(cli("tenant", "list", "--json")[1])[0]["id"]
    ids = _append_events(tenant_id, datetime(2026, 1, 1, 10, tzinfo=UTC),
                         datetime(2026, 1, 1, 11, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC))
    endpoint_id = _add(cli)["id"]
    assert _endpoint(endpoint_id)["cursor"] == 3

    code, out, err = cli("webhook", "replay", endpoint_id, "--since", "2026-01-01T10:30:00Z")
    assert (code, err) == (0, "")
    assert out == (f"webhook endpoint {endpoint_id}: 2 event(s) to deliver from "
                   "2026-01-01T10:30:00Z on\n")
    assert _endpoint(endpoint_id)["cursor"] == 1

    assert cli("webhook", "replay", endpoint_id, "--since", ids[0])[0] == 0
    assert _endpoint(endpoint_id)["cursor"] == 0

    code, _, err = cli("webhook", "replay", endpoint_id, "--since", "evt_unknown")
    assert code == 2
    assert err.startswith("error: No event 'evt_unknown' of this endpoint's tenant")


def test_deliveries_are_listed_newest_first(cli: Cli) -> None:
    endpoint_id = _add(cli)["id"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _execute(insert(WebhookAttempt).values([
        {"endpoint_id": endpoint_id, "event_position": position, "event_id": f"evt_{position}",
         "attempted_at": start + timedelta(seconds=position), "status_code": status,
         "latency_ms": 20.5, "error": error}
        for position, status, error in ((1, 204, None), (2, None, "connection refused"),
                                        (3, 503, "HTTP 503"))
    ]))

    code, out, _ = cli("webhook", "deliveries", endpoint_id)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ATTEMPTED", "EVENT", "POSITION", "STATUS", "LATENCY", "MS",
                                "ERROR"]
    assert [line.split()[2] for line in lines[1:]] == ["evt_3", "evt_2", "evt_1"]
    assert lines[2].split()[3:] == ["2", "-", "20.5", "connection", "refused"]

    listed = json.loads(cli("webhook", "deliveries", endpoint_id, "--limit", "1", "--json")[1])
    assert [(a["event_id"], a["status_code"]) for a in listed] == [("evt_3", 503)]


def test_remove_deletes_the_endpoint(cli: Cli) -> None:
    endpoint_id = _add(cli)["id"]
    assert cli("webhook", "remove", endpoint_id) == (
        0, f"webhook endpoint {endpoint_id} removed\n", "")
    assert cli("webhook", "list") == (0, "(no webhook endpoints)\n", "")
