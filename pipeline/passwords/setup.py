"""Password handling from the settings: the API seals, the workers hash, production needs a key.

Without a key the API could only journal a password in cleartext, or hash it inside the IdP's
request; it does neither. See docs/ARCHITECTURE.md ("Passwords").
"""

from __future__ import annotations

import os
from pathlib import Path

from scimflow.pipeline.passwords.crypto import (
    Argon2idHasher,
    Argon2Parameters,
    PasswordPolicy,
    PasswordSeal,
    generate_key,
)
from scimflow.pipeline.passwords.unsealing import SealedPasswords
from scimflow.pipeline.ports import PasswordProtector
from scimflow.pipeline.settings import ConfigError, Settings
from scimflow.pipeline.store.db import sqlite_file

KEY_FILE_SUFFIX = ".password-key"


def require_password_key(settings: Settings, who: str) -> None:
    """A production process refuses to start when it would have no way to protect passwords."""
    if settings.password_policy is PasswordPolicy.HASH and not settings.password_key:
        raise _no_key(who)
    password_seal(settings)  # a malformed key fails here, at start, not on the first password


def password_seal(settings: Settings) -> PasswordSeal | None:
    """The configured seal; the embedded mode's own key when none is configured."""
    key = settings.password_key or _embedded_key(settings)
    if not key:
        return None
    try:
        return PasswordSeal.from_setting(key)
    except ValueError as ex:
        raise ConfigError(f"SCIMFLOW_PASSWORD_KEY is invalid: {ex}") from ex


def api_protector(settings: Settings) -> PasswordProtector | None:
    """What validation does with a password: seal it, or nothing (policy `ignore`: dropped)."""
    if settings.password_policy is PasswordPolicy.IGNORE:
        return None
    seal = password_seal(settings)
    if seal is None:
        raise _no_key("the API")
    return seal.seal


def _no_key(who: str) -> ConfigError:
    return ConfigError(
        f"SCIMFLOW_PASSWORD_KEY is not set: {who} needs it to seal passwords between the "
        "API and the workers (make one with `scimflow password-key`), or set "
        "SCIMFLOW_PASSWORD_POLICY=ignore to drop passwords"
    )


def worker_passwords(settings: Settings) -> SealedPasswords:
    """The drain's hashing of sealed passwords (a keyless worker dead-letters them)."""
    parameters = Argon2Parameters(
        memory_kib=settings.password_memory_kib,
        time_cost=settings.password_time_cost,
        parallelism=settings.password_parallelism,
    )
    return SealedPasswords(password_seal(settings), Argon2idHasher(parameters))


def embedded_key_file(settings: Settings) -> Path | None:
    """Where the embedded mode keeps its key: beside its SQLite file (None: not embedded)."""
    database = sqlite_file(settings.database_url)
    if not settings.embedded or database is None:
        return None
    return database.with_name(database.name + KEY_FILE_SUFFIX)


def _embedded_key(settings: Settings) -> str | None:
    # The key must outlive the process: a password acknowledged just before a restart is
    # still sealed in the journal, and the next start must open it.
    if settings.password_policy is PasswordPolicy.IGNORE:
        return None
    path = embedded_key_file(settings)
    if path is None:
        return None
    if not path.exists():
        _create_key_file(path)
    return path.read_text("ascii").strip()


def _create_key_file(path: Path) -> None:
    # Written whole under a temporary name, then linked into place: a concurrent first start
    # (the API and the worker of one process, two processes) reads one complete key.
    draft = path.with_name(f"{path.name}.{os.getpid()}.{id(path)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(generate_key() + "\n")
        os.link(draft, path)
    except FileExistsError:
        pass  # another start created it first: that key is the one
    finally:
        draft.unlink(missing_ok=True)
