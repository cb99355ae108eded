"""Operator accounts and console sessions (pipeline/services/operators.py) and the
`scimflow operator` and `scimflow dead-letters` commands, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from scimflow.pipeline.errors import InvalidValue, NotFound, Uniqueness
from scimflow.pipeline.services.operators import ConsoleSessions, OperatorAccounts, token_digest
from scimflow.pipeline.store.models import ConsoleSessionRow, OperatorRow
from tests.integration.conftest import Services
from tests.integration.test_operations import World, dead_letter_of_a_missing_member
from tests.support.cli import Cli

PASSWORD = "correct horse battery"


@dataclass
class Clock:
    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(services: Services, clock: Clock) -> OperatorAccounts:
    return OperatorAccounts(services.sessions, clock=clock)


@pytest.fixture
def console(services: Services, clock: Clock) -> ConsoleSessions:
    return ConsoleSessions(services.sessions, lifetime_hours=8, clock=clock)


def test_create_and_authenticate(accounts: OperatorAccounts, services: Services) -> None:
    created = accounts.create("Alice", PASSWORD)
    assert accounts.authenticate("alice", PASSWORD) == created  # usernames ignore case
    assert accounts.authenticate("ALICE", PASSWORD + "!") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    assert [o.username for o in accounts.list()] == ["Alice"]
    with services.sessions() as session:
        stored = session.scalars(select(OperatorRow.password_hash)).one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_usernames_are_unique_whatever_their_case_and_passwords_long(
    accounts: OperatorAccounts,
) -> None:
    accounts.create("alice", PASSWORD)
    with pytest.raises(Uniqueness):
        accounts.create("ALICE", PASSWORD)
    with pytest.raises(InvalidValue, match="12"):
        accounts.create("bob", "short")
    with pytest.raises(InvalidValue):
        accounts.create("  ", PASSWORD)
    with pytest.raises(NotFound):
        accounts.remove("bob")


def test_sessions_expire_and_end(accounts: OperatorAccounts, console: ConsoleSessions,
                                 clock: Clock, services: Services) -> None:
    operator = accounts.create("alice", PASSWORD)
    started = console.start(operator)
    found = console.find(started.token)
    assert found is not None and found.operator == operator
    assert found.csrf_token == started.session.csrf_token and len(found.csrf_token) >= 32
    assert found.expires_at == clock.now + timedelta(hours=8)
    with services.sessions() as session:
        hashes = list(session.scalars(select(ConsoleSessionRow.token_hash)))
    assert hashes == [token_digest(started.token)]  # the token itself is never stored

    other = console.start(operator)
    assert other.token != started.token and other.session.csrf_token != found.csrf_token
    console.end(started.token)
    assert console.find(started.token) is None and console.find(other.token) is not None
    assert console.find("") is None and console.find("forged") is None

    clock.now += timedelta(hours=8)
    assert console.find(other.token) is None


def test_a_removed_operator_or_a_new_password_ends_the_sessions(
    accounts: OperatorAccounts, console: ConsoleSessions, services: Services,
) -> None:
    alice, bob = accounts.create("alice", PASSWORD), accounts.create("bob", PASSWORD)
    kept = console.start(bob)
    changed = console.start(alice)
    accounts.set_password("alice", PASSWORD + " two")
    assert console.find(changed.token) is None
    assert accounts.authenticate("alice", PASSWORD) is None
    assert accounts.authenticate("alice", PASSWORD + " two") == alice
    removed = console.start(alice)
    accounts.remove("ALICE")
    assert console.find(removed.token) is None and console.find(kept.token) is not None
    assert accounts.authenticate("alice", PASSWORD + " two") is None
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ConsoleSessionRow)) == 1



def test_operator_commands(cli: Cli, accounts: OperatorAccounts,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli("operator", "create", "alice", "--password-stdin")[:2] == (
        0, "operator alice created\n")
    assert accounts.authenticate("alice", PASSWORD) is not None
    typed = iter([PASSWORD + "2", PASSWORD + "2"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    assert cli("operator", "create", "bob")[0] == 0
    assert accounts.authenticate("bob", PASSWORD + "2") is not None

    code, out, _ = cli("operator", "list", "--json")
    assert code == 0 and [o["username"] for o in json.loads(out)] == ["alice", "bob"]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = cli("operator", "password", "alice", "--password-stdin")
    assert code == 2 and "12" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "3\n"))
    assert cli("operator", "password", "alice", "--password-stdin")[0] == 0
    assert accounts.authenticate("alice", PASSWORD + "3") is not None
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _, err = cli("operator", "create", "ALICE", "--password-stdin")
    assert code == 1 and "already exists" in err
    assert cli("operator", "remove", "alice")[0] == 0
    code, _, err = cli("operator", "remove", "alice")
    assert code == 2 and "No operator" in err
    code, out, _ = cli("operator", "list")
    assert code == 0 and "bob" in out and "alice" not in out


def test_dead_letter_commands(cli: Cli, services: Services) -> None:
    world = World(services)
    group, _ghost = dead_letter_of_a_missing_member(world)
    code, out, _ = cli("dead-letters", "list", "--json")
    [letter] = json.loads(out)
    assert code == 0 and letter["resource_id"] == group and letter["summary"] == "added 1 member"
    code, out, _ = cli("dead-letters", "list", "--tenant", "acme")
    assert code == 0 and "waiters" in out and "added 1 member" in out
    assert cli("dead-letters", "discard", str(letter["id"]))[0] == 0
    assert cli("dead-letters", "list")[1].strip() == "(no dead letters)"
    code, out, _ = cli("dead-letters", "list", "--all", "--json")
    assert [d["settled"] for d in json.loads(out)] == ["discarded"]
    code, _, err = cli("dead-letters", "replay", str(letter["id"]))
    assert code == 1 and "discarded" in err
    code, _, err = cli("dead-letters", "discard", "999")
    assert code == 2 and "No dead letter 999" in err


def test_status_shows_the_read_models_figures(cli: Cli, services: Services) -> None:
    world = World(services)
    world.user("ann")
    _code, out, _ = cli("status", "--json")  # 1: work waits and no worker drains it
    [acme] = json.loads(out)["tenants"]
    assert (acme["tenant"], acme["backlog"], acme["dead_letters"]) == ("acme", 1, 0)
    assert acme["last_write_at"] is not None and acme["idp_dialect"] is None
    assert {"drain_rate", "refused_last_hour", "retrying", "oldest_pending_seconds"} <= set(acme)
    _code, out, _ = cli("status")
    assert "IDP" in out and "429 LAST HOUR" in out and "acme" in out
