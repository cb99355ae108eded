"""The worker's half: sealed passwords in commands become hashes; settings decide who has a key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.passwords.crypto import (
    PasswordPolicy,
    PasswordSeal,
    UnreadableSeal,
    generate_key,
    verify_password,
)
from scimflow.pipeline.passwords.setup import (
    api_protector,
    embedded_key_file,
    password_seal,
    require_password_key,
    worker_passwords,
)
from scimflow.pipeline.passwords.unsealing import SealedPasswords, holds_sealed_password
from scimflow.pipeline.settings import ConfigError, Settings

KEY = generate_key()
SEAL = PasswordSeal([KEY])
PASSWORDS = SealedPasswords(SEAL, lambda cleartext: f"hashed({cleartext})")


def test_a_created_user_s_sealed_password_is_hashed() -> None:
    command = Command(CommandKind.CREATE, "User", "u1",
                      resource={"userName": "a", "password": SEAL.seal("s3cret")})
    hashed = PASSWORDS.hashed(command)
    assert hashed is not None and hashed.resource == {"userName": "a", "password": "hashed(s3cret)"}
    assert holds_sealed_password(command) and not holds_sealed_password(hashed)
    assert command.resource is not None and command.resource["password"].startswith("$sealed$")


def test_each_patch_operation_on_password_is_hashed_and_the_others_kept() -> None:
    operations = (
        {"op": "replace", "path": "password", "value": SEAL.seal("one")},
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": "password", "value": SEAL.seal("two")},
    )
    hashed = PASSWORDS.hashed(Command(CommandKind.PATCH, "User", "u1", operations=operations))
    assert hashed is not None
    assert [op.get("value") for op in hashed.operations] == ["hashed(one)", False, "hashed(two)"]


def test_a_command_without_a_sealed_password_is_left_alone() -> None:
    for command in (
        Command(CommandKind.CREATE, "User", "u1", resource={"userName": "a"}),
        Command(CommandKind.REPLACE, "User", "u1",
                resource={"userName": "a", "password": "pbkdf2_sha256$1000$x$y"}),
        Command(CommandKind.PATCH, "User", "u1",
                operations=({"op": "replace", "path": "displayName", "value": "$sealed$x"},)),
        Command(CommandKind.DELETE, "User", "u1"),
    ):
        assert PASSWORDS.hashed(command) is None, command


def test_a_seal_no_key_opens_is_unreadable_not_a_crash() -> None:
    command = Command(CommandKind.CREATE, "User", "u1",
                      resource={"password": PasswordSeal([generate_key()]).seal("x")})
    with pytest.raises(UnreadableSeal):
        PASSWORDS.hashed(command)
    with pytest.raises(UnreadableSeal, match="no password key"):
        SealedPasswords(None, str).hashed(
            Command(CommandKind.CREATE, "User", "u1", resource={"password": SEAL.seal("x")}))


def test_production_refuses_to_start_without_a_key_unless_passwords_are_ignored() -> None:
    production = Settings(broker_url="redis://127.0.0.1:6379/0",
                          database_url="postgresql+psycopg://db/scimflow")
    with pytest.raises(ConfigError, match="SCIMFLOW_PASSWORD_KEY is not set: `scimflow worker`"):
        require_password_key(production, "`scimflow worker`")
    with pytest.raises(ConfigError, match="SCIMFLOW_PASSWORD_KEY is not set"):
        api_protector(production)
    require_password_key(Settings(broker_url=production.broker_url,
                                  password_policy=PasswordPolicy.IGNORE), "the API")
    with pytest.raises(ConfigError, match="SCIMFLOW_PASSWORD_KEY is invalid"):
        require_password_key(Settings(password_key="nope"), "the API")


def test_the_api_seals_what_the_worker_hashes_with_the_configured_key() -> None:
    settings = Settings(broker_url="redis://x", password_key=KEY,
                        password_memory_kib=256, password_time_cost=1)
    protect = api_protector(settings)
    assert protect is not None
    sealed = protect("s3cret")
    hashed = worker_passwords(settings).hashed(
        Command(CommandKind.CREATE, "User", "u1", resource={"password": sealed}))
    assert hashed is not None and hashed.resource is not None
    assert hashed.resource["password"].startswith("$argon2id$v=19$m=256,t=1,p=1$")
    assert verify_password("s3cret", hashed.resource["password"])
    assert api_protector(Settings(password_policy=PasswordPolicy.IGNORE)) is None


def test_the_embedded_mode_keeps_one_private_key_beside_its_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'scimflow.sqlite3'}")
    key_file = embedded_key_file(settings)
    assert key_file == tmp_path / "scimflow.sqlite3.password-key"
    first = password_seal(settings)
    assert first is not None and key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = password_seal(settings)  # a restart, or the in-process worker: the same key
    assert second is not None and second.open(first.seal("x")) == "x"
    assert list(tmp_path.iterdir()) == [key_file]  # no draft left behind


def test_only_the_embedded_mode_makes_a_key_of_its_own(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'scimflow.sqlite3'}"
    assert password_seal(Settings(database_url=database, broker_url="redis://x")) is None
    assert password_seal(Settings(database_url="sqlite://")) is None  # in memory: nowhere
    ignored = Settings(database_url=database, password_policy=PasswordPolicy.IGNORE)
    assert password_seal(ignored) is None
    assert list(tmp_path.iterdir()) == []
