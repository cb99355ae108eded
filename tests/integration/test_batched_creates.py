"""Creates of concurrent requests: each is journaled exactly once, keys stay unique.

On PostgreSQL concurrent creates are written together, one statement per batch
(`pipeline/store/batched_creates.py`); these tests hold on both databases, and the batch statement
itself is checked item by item on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.errors import Uniqueness
from scimflow.pipeline.store import batched_creates
from scimflow.pipeline.store.models import AcknowledgedRow, JournalEntry, User
from tests.integration.conftest import USER_SCHEMA, Services

THREADS = 16


def _create(services: Services, tenant: Any, body: dict[str, Any]) -> str:
    try:
        accepted = services.writes.create(tenant, "User", body, request_id="concurrent")
    except Uniqueness:
        return "409"
    return "201" if accepted.created else "replayed"


def _applied_user_names(services: Services) -> list[str]:
    with services.sessions() as session:
        return sorted(session.scalars(select(User.user_name)))


def _journal_kinds(services: Services) -> Counter[tuple[str, str]]:
    with services.sessions() as session:
        rows = session.execute(select(JournalEntry.resource_id, JournalEntry.kind))
        return Counter((row.resource_id, row.kind) for row in rows)


def test_concurrent_creates_are_each_acknowledged_and_journaled_once(services: Services) -> None:
    tenant = services.tenant("acme")
    bodies = [{"schemas": [USER_SCHEMA], "userName": f"u{i}@example.com", "externalId": f"e{i}"}
              for i in range(200)]
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda body: _create(services, tenant, body), bodies))
    assert outcomes == ["201"] * 200
    journal = _journal_kinds(services)
    assert len(journal) == 200 and set(journal.values()) == {1}
    services.drain()
    assert _applied_user_names(services) == sorted(b["userName"] for b in bodies)


def test_concurrent_creates_of_one_user_name_leave_one_user(services: Services) -> None:
    tenant = services.tenant("acme")
    bodies = [{"schemas": [USER_SCHEMA], "userName": "Same@Example.com", "externalId": f"e{i}"}
              for i in range(THREADS * 2)]
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = Counter(pool.map(lambda body: _create(services, tenant, body), bodies))
    assert outcomes == {"201": 1, "409": THREADS * 2 - 1}
    assert len(_journal_kinds(services)) == 1


def test_identical_concurrent_posts_create_one_user_and_replay_it(services: Services) -> None:
    tenant = services.tenant("acme")
    body = {"schemas": [USER_SCHEMA], "userName": "retried@example.com", "externalId": "r1"}
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = Counter(pool.map(lambda _: _create(services, tenant, dict(body)),
                                    range(THREADS * 2)))
    assert outcomes == {"201": 1, "replayed": THREADS * 2 - 1}
    assert len(_journal_kinds(services)) == 1


def _new(tenant_id: str, resource_id: str, user_name: str, external_id: str) -> Any:
    data = {"schemas": [USER_SCHEMA], "userName": user_name, "externalId": external_id}
    command = Command(CommandKind.CREATE, "User", resource_id, resource=data)
    return batched_creates.new_resource(tenant_id, command, data, now=datetime.now(UTC),
                                   create_digest="digest", request_id=f"req-{resource_id}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # batching is PG's
def test_a_batch_inserts_and_journals_exactly_the_creates_whose_keys_are_free(
    services: Services, db_engine: Engine
) -> None:
    tenant = services.tenant("acme")
    services.user(tenant, "taken@example.com", externalId="taken")
    batch = [
        _new(tenant.id, "a", "a@example.com", "ea"),
        _new(tenant.id, "b", "TAKEN@example.com", "eb"),  # userName compares case-insensitively
        _new(tenant.id, "c", "c@example.com", "ec"),
        _new(tenant.id, "d", "c@example.com", "ed"),  # same userName as c, in the same batch
        _new(tenant.id, "e", "e@example.com", "taken"),  # externalId taken
        _new(tenant.id, "f", "f@example.com", "ef"),
    ]
    with db_engine.connect() as connection:
        inserted = batched_creates.insert_created_batch(connection, batch)
        connection.commit()
    assert inserted == [True, False, True, False, False, True]
    with services.sessions() as session:
        journaled = session.execute(
            select(JournalEntry.resource_id, JournalEntry.request_id, JournalEntry.status)
            .where(JournalEntry.request_id.like("req-%")).order_by(JournalEntry.seq)
        ).all()
        resources = set(session.scalars(
            select(AcknowledgedRow.id).where(AcknowledgedRow.id.in_(list("abcdef")))))
    assert [row.resource_id for row in journaled] == ["a", "c", "f"]  # in batch order
    assert {row.status for row in journaled} == {"pending"}
    assert resources == {"a", "c", "f"}
    services.drain()
    assert _applied_user_names(services) == [
        "a@example.com", "c@example.com", "f@example.com", "taken@example.com"]
