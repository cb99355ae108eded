"""Passwords from the IdP to the applied directory: sealed when acknowledged, hashed when applied.

The API journals a password sealed with the configured key and keeps none in the acknowledged
state; the drain hashes it (argon2id) and leaves only the hash, in the directory and in the
journal entry. On both databases, with the real acceptance and drain services.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.passwords.crypto import (
    Argon2idHasher,
    Argon2Parameters,
    PasswordSeal,
    generate_key,
    verify_password,
)
from scimflow.pipeline.passwords.unsealing import SealedPasswords
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.drain import PASSWORD_HASHES_PER_BATCH, Drainer, RetryPolicy
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.store import dead_letters, tenants
from scimflow.pipeline.store.db import make_sessions
from scimflow.pipeline.store.models import AcknowledgedRow, JournalEntry, User
from scimflow.pipeline.store.tenants import TenantRef
from tests.integration.conftest import USER_SCHEMA, RecordingDispatcher, TickingClock

SEAL = PasswordSeal([generate_key()])
HASHER = Argon2idHasher(Argon2Parameters(memory_kib=256, time_cost=1))
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def api_writes(sessions: sessionmaker[Session], seal: PasswordSeal) -> WriteService:
    """The API's write service, sealing passwords with `seal`."""
    protocol = ScimProtocol(default_registry(), protect_password=seal.seal)
    return WriteService(sessions, protocol, RecordingDispatcher(), clock=TickingClock())


class Pipeline:
    def __init__(self, db_engine: Engine) -> None:
        self.sessions: sessionmaker[Session] = make_sessions(db_engine)
        self.writes = api_writes(self.sessions, SEAL)
        self.drainer = Drainer(self.sessions, ScimProtocol(default_registry()),
                               retry=RetryPolicy(limit=1),
                               passwords=SealedPasswords(SEAL, HASHER))
        with self.sessions.begin() as session:
            self.tenant: TenantRef = tenants.create_tenant(session, "acme", now=utc_now())

    def create(self, user_name: str, *, writes: WriteService | None = None,
               **attributes: Any) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
        service = writes or self.writes
        return service.create(self.tenant, "User", body, request_id="t").resource.id

    def patch(self, user_id: str, *operations: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
        self.writes.patch(self.tenant, "User", user_id, body, if_match=None, request_id="t")

    def applied_password(self, user_id: str) -> str:
        with self.sessions() as session:
            data = session.execute(select(User.data).where(User.id == user_id)).scalar_one()
        return str(data["password"])

    def stored_text(self) -> str:
        """Everything the journal and the acknowledged state hold, as text."""
        with self.sessions() as session:
            commands = session.execute(select(JournalEntry.command)).scalars().all()
            states = session.execute(select(AcknowledgedRow.data)).scalars().all()
        return json.dumps([*commands, *states])


def test_a_password_is_sealed_when_acknowledged_and_only_its_hash_remains_once_applied(
    db_engine: Engine,
) -> None:
    pipeline = Pipeline(db_engine)
    user = pipeline.create("ann@example.com", password="Ann-s3cret")
    acknowledged = pipeline.stored_text()
    assert "Ann-s3cret" not in acknowledged
    assert acknowledged.count("$sealed$") == 1  # in the journal only, not the acknowledged state
    pipeline.drainer.drain()
    hashed = pipeline.applied_password(user)
    assert hashed.startswith("$argon2id$") and verify_password("Ann-s3cret", hashed)
    applied = pipeline.stored_text()
    assert "$sealed$" not in applied and "Ann-s3cret" not in applied
    assert hashed in applied  # the journal entry now records what was applied


def test_put_without_a_password_keeps_the_hash_and_patch_replaces_it(db_engine: Engine) -> None:
    pipeline = Pipeline(db_engine)
    user = pipeline.create("bob@example.com", password="first-Pass1")
    pipeline.drainer.drain()
    body = {"schemas": [USER_SCHEMA], "userName": "bob@example.com", "displayName": "Bob"}
    pipeline.writes.replace(pipeline.tenant, "User", user, body, if_match=None, request_id="t")
    pipeline.drainer.drain()
    assert verify_password("first-Pass1", pipeline.applied_password(user))
    pipeline.patch(user, {"op": "replace", "path": "password", "value": "second-Pass2"})
    pipeline.drainer.drain()
    assert verify_password("second-Pass2", pipeline.applied_password(user))
    assert not verify_password("first-Pass1", pipeline.applied_password(user))


def test_a_password_no_key_opens_is_a_dead_letter_and_other_users_apply(
    db_engine: Engine,
) -> None:
    pipeline = Pipeline(db_engine)
    # Sealed by an API configured with another key than the workers'.
    foreign = api_writes(pipeline.sessions, PasswordSeal([generate_key()]))
    lost = pipeline.create("lost@example.com", writes=foreign, password="x-Pass1")
    kept = pipeline.create("kept@example.com", password="y-Pass2")
    report = pipeline.drainer.drain()
    assert report.dead == 1
    assert verify_password("y-Pass2", pipeline.applied_password(kept))
    with pipeline.sessions() as session:
        letters = dead_letters.list_dead_letters(session)
        assert [letter.resource_id for letter in letters] == [lost]
        assert "UnreadableSeal" in letters[0].reason


def test_a_batch_hashes_a_bounded_number_of_passwords(db_engine: Engine) -> None:
    pipeline = Pipeline(db_engine)
    users = [pipeline.create(f"u{n}@example.com", password=f"Pass-{n}")
             for n in range(PASSWORD_HASHES_PER_BATCH + 5)]
    first = pipeline.drainer.drain_once()
    assert first.applied == PASSWORD_HASHES_PER_BATCH and first.more_waiting
    pipeline.drainer.drain()
    assert all(pipeline.applied_password(user).startswith("$argon2id$") for user in users)
    with pipeline.sessions() as session:
        pending = session.execute(
            text("SELECT count(*) FROM journal WHERE status = 'pending'")).scalar_one()
    assert pending == 0
