"""The operator CLI on a SQLite file: migrations only from `migrate`, tenants and tokens, files.

Each command runs in-process through `scimflow.ops.cli.main`, exactly as the console script does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scimflow.pipeline.store.migrate import schema_state, upgrade
from tests.support.cli import Cli, cli_in


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI in an empty directory."""
    return cli_in(tmp_path, monkeypatch, capsys)


def test_commands_refuse_a_missing_database_without_creating_one(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("tenant", "create", "acme")
    database = tmp_path / "scimflow.sqlite3"
    assert (code, err) == (1, f"error: no database at {database}: run `scimflow migrate` to "
                              "create it (a relative SQLite path is relative to the current "
                              "directory)\n")
    assert not database.exists()


def test_migrate_names_the_revisions_it_applies_then_says_it_is_current(cli: Cli) -> None:
    code, out, _ = cli("migrate")
    head = schema_state("sqlite:///scimflow.sqlite3").head
    assert code == 0
    assert out.startswith("database sqlite:///scimflow.sqlite3: applied ")
    assert out.rstrip().endswith(f", {head}") and "0001, 0002" in out
    assert cli("migrate")[1] == "database sqlite:///scimflow.sqlite3: schema already up to date\n"


def test_commands_refuse_a_schema_that_is_behind_and_do_not_migrate_it(cli: Cli) -> None:
    upgrade("sqlite:///scimflow.sqlite3", "0007")
    code, _, err = cli("tenant", "list")
    head = schema_state("sqlite:///scimflow.sqlite3").head
    assert code == 1
    assert err == (f"error: the database sqlite:///scimflow.sqlite3 is at revision 0007, this "
                   f"scimflow needs {head}: run `scimflow migrate`\n")
    assert schema_state("sqlite:///scimflow.sqlite3").current == "0007"


def test_tokens_listed_and_an_unknown_token_id_is_an_error(cli: Cli) -> None:
    cli("migrate")
    created = json.loads(cli("tenant", "create", "acme", "--json")[1])
    code, out, _ = cli("token", "list", "acme")
    assert code == 0 and created["token_id"] in out and created["token"] not in out
    assert out.splitlines()[0].split() == ["ID", "LABEL", "CREATED", "REVOKED"]
    code, _, err = cli("token", "revoke", "acme", "--token-id", "nope")
    assert (code, err) == (1, "error: No token 'nope' for tenant 'acme'.\n")
    assert cli("token", "revoke", "acme", "--token-id", created["token_id"])[:2] == (
        0, "revoked 1 token(s)\n")


def test_a_tenant_is_deleted_only_when_disabled_and_confirmed(cli: Cli) -> None:
    cli("migrate")
    cli("tenant", "create", "acme")
    assert cli("tenant", "delete", "acme", "--yes")[0] == 1  # still enabled
    assert cli("tenant", "disable", "acme")[0] == 0
    assert "disabled" in cli("tenant", "list")[1]
    code, _, err = cli("tenant", "delete", "acme")
    assert code == 2 and "--yes" in err
    code, out, _ = cli("tenant", "delete", "acme", "--yes", "--json")
    assert code == 0 and json.loads(out)["deleted"]["api_tokens"] == 1
    assert cli("tenant", "list")[1] == "(no tenants)\n"
    assert cli("tenant", "enable", "acme")[:3] == (1, "", "error: No tenant 'acme'.\n")


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read {path}: No such file or directory"),
    ("{not json", "{path} is not JSON: Expecting property name enclosed in double quotes at "
                  "line 1 column 2"),
])
def test_an_unreadable_file_is_one_line_naming_it(
    cli: Cli, tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "body.json"
    if content is not None:
        path.write_text(content)
    code, _, err = cli("validate", "User", str(path))
    assert (code, err) == (2, f"error: {reason.format(path=path)}\n")


HR = {
    "id": "urn:example:params:scim:schemas:extension:hr:2.0:User", "name": "HR",
    "attributes": [{"name": "costCenter", "type": "string", "multiValued": False,
                    "required": False, "mutability": "readWrite", "returned": "default",
                    "uniqueness": "none", "caseExact": False}],
}


def test_validate_uses_a_tenants_extension_schemas(cli: Cli, tmp_path: Path) -> None:
    cli("migrate")
    cli("tenant", "create", "acme")
    schema, body = tmp_path / "hr.json", tmp_path / "user.json"
    schema.write_text(json.dumps(HR))
    assert cli("schema", "add", "acme", str(schema))[0] == 0
    body.write_text(json.dumps({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", HR["id"]],
        "userName": "alice", HR["id"]: {"costCenter": "42"},
    }))
    code, out, _ = cli("validate", "User", str(body), "--tenant", "acme")
    assert code == 0 and '"costCenter": "42"' in out
    code, out, _ = cli("validate", "User", str(body))  # the built-in schemas alone
    assert code == 1 and "invalid" in out.lower()
