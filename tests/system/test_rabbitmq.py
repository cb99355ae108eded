"""The whole pipeline on RabbitMQ with quorum queues, the durable broker option.

The stack runs as in production (gunicorn API, Celery worker, beat) with
`SCIMFLOW_BROKER_QUORUM_QUEUES=true` on an amqp:// broker. A group names users that are
acknowledged but held back from the workers, so its creation waits and is retried through
`ring_later`: a countdown, which on quorum queues only RabbitMQ's native delayed delivery can
deliver. The sweeper is slowed to once an hour, so every doorbell after the first is rung by
the workers themselves: if a delayed doorbell were lost, nothing would apply and the test fails.

Only this test uses RabbitMQ here: scimflow's queues are deleted before and after it, so a
queue left over from another configuration (a classic one) cannot refuse the declaration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import DEFAULT_QUEUE, URGENT_QUEUE, make_celery
from scimflow.workers.dispatch import CeleryDispatcher
from tests.support.services import RABBITMQ_URL, require_postgres, require_rabbitmq
from tests.system.stack import Stack, running_stack

QUEUES = (URGENT_QUEUE, DEFAULT_QUEUE)
USERS = 300
DEACTIVATED = 5
QUORUM_ENV = {
    "SCIMFLOW_BROKER_QUORUM_QUEUES": "true",
    # No sweeper ringing every second: the workers' own delayed doorbells must do it.
    "SCIMFLOW_SWEEP_INTERVAL_SECONDS": "3600",
    # The group retries while its members are held; never let it become a dead letter.
    "SCIMFLOW_REFERENCE_RETRY_LIMIT": "50",
}
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
HELD_FOR = "1 hour"


@pytest.fixture
def rabbitmq() -> Iterator[str]:
    require_postgres()
    require_rabbitmq()
    delete_queues(RABBITMQ_URL)
    yield RABBITMQ_URL
    delete_queues(RABBITMQ_URL)


def delete_queues(url: str) -> None:
    """scimflow's queues and exchange, gone (deleting what does not exist is fine)."""
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.channel()
        for name in QUEUES:
            channel.queue_delete(name)
        channel.exchange_delete(DEFAULT_QUEUE)


def test_the_pipeline_applies_on_rabbitmq_quorum_queues(tmp_path: Path, rabbitmq: str) -> None:
    with running_stack(tmp_path, workers=0, broker_url=rabbitmq, extra_env=QUORUM_ENV,
                       database_prefix="rabbit") as stack:
        tenant = stack.create_tenant("rabbit")
        user_ids, group_id = send_writes(stack, tenant["token"])
        assert_quorum_queues(rabbitmq)
        hold_users(stack, tenant["tenant_id"], f"now() + interval '{HELD_FOR}'")
        # The API's doorbells reached RabbitMQ; dropped here, so one ring starts everything.
        assert purge_queues(rabbitmq) > 0
        stack.start_worker()
        ring(rabbitmq, tenant["tenant_id"])

        # Attempt 1 came from that ring; attempt 2 only from a delayed doorbell.
        wait_for_attempts(stack, group_id, 2)
        hold_users(stack, tenant["tenant_id"], "NULL")
        stack.wait_until_applied(timeout=90)

        assert_everything_applied(stack, tenant["tenant_id"], user_ids, group_id)
        assert_status_clean(stack, tenant["tenant"])


# --- the writes ------------------------------------------------------------------------------


def send_writes(stack: Stack, token: str) -> tuple[list[str], str]:
    """USERS creates, a group with half of them, a PATCH adding the rest, a few deactivations."""
    with stack.client(token) as client:
        user_ids = [created(client.post("/Users", json=user(index)))
                    for index in range(USERS)]
        half = USERS // 2
        group_id = created(client.post("/Groups", json={
            "schemas": [GROUP_SCHEMA], "displayName": "Everyone",
            "members": [{"value": user_id} for user_id in user_ids[:half]],
        }))
        added = client.patch(f"/Groups/{group_id}", json=patch(
            {"op": "add", "path": "members",
             "value": [{"value": user_id} for user_id in user_ids[half:]]},
        ))
        assert added.status_code in (200, 204), added.text
        for user_id in user_ids[:DEACTIVATED]:
            deactivated = client.patch(f"/Users/{user_id}", json=patch(
                {"op": "replace", "path": "active", "value": False},
            ))
            assert deactivated.status_code in (200, 204), deactivated.text
    return user_ids, group_id


def user(index: int) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": f"rabbit{index:04d}@example.com",
            "externalId": f"00u-rabbit-{index}", "active": True}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def created(response: Any) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- the broker ------------------------------------------------------------------------------


def assert_quorum_queues(url: str) -> None:
    """Both queues exist, and RabbitMQ refuses to see them as classic queues."""
    with Connection(url, connect_timeout=5) as connection:
        for name in QUEUES:
            connection.channel().queue_declare(name, passive=True)
            with pytest.raises(PreconditionFailed, match="x-queue-type"):
                connection.channel().queue_declare(
                    name, durable=True, auto_delete=False,
                    arguments={"x-queue-type": "classic"},
                )


def purge_queues(url: str) -> int:
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.channel()
        return sum(int(channel.queue_purge(name) or 0) for name in QUEUES)


def ring(url: str, tenant_id: str) -> None:
    """One doorbell, sent as the API sends them."""
    app = make_celery(Settings(broker_url=url, broker_quorum_queues=True))
    try:
        CeleryDispatcher(app).ring(tenant_id)
    finally:
        app.close()


# --- the journal -----------------------------------------------------------------------------


def hold_users(stack: Stack, tenant_id: str, not_before: str) -> None:
    """Keep the users' pending entries from the workers (or release them with NULL)."""
    engine = create_engine(stack.database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                f"UPDATE journal SET not_before = {not_before} WHERE tenant_id = :t"
                " AND resource_type = 'User' AND status = 'pending'"
            ), {"t": tenant_id})
    finally:
        engine.dispose()


def wait_for_attempts(stack: Stack, group_id: str, attempts: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    query = "SELECT max(attempts) FROM journal WHERE resource_id = :g AND status = 'pending'"
    while time.monotonic() < deadline:
        if (stack.sql(query, g=group_id)[0][0] or 0) >= attempts:
            return
        time.sleep(0.2)
    raise AssertionError(f"the group was not tried {attempts} times within {timeout}s:\n"
                         f"{stack.log('worker1')[-3000:]}")


def assert_everything_applied(
    stack: Stack, tenant_id: str, user_ids: list[str], group_id: str
) -> None:
    statuses = dict(stack.sql(
        "SELECT status, count(*) FROM journal WHERE tenant_id = :t GROUP BY status", t=tenant_id,
    ))
    assert statuses == {"applied": USERS + 2 + DEACTIVATED}, statuses
    members = {row[0] for row in stack.sql(
        "SELECT member_id FROM memberships WHERE tenant_id = :t AND group_id = :g",
        t=tenant_id, g=group_id,
    )}
    assert members == set(user_ids)
    inactive = {row[0] for row in stack.sql(
        "SELECT id FROM users WHERE tenant_id = :t AND NOT active", t=tenant_id,
    )}
    assert inactive == set(user_ids[:DEACTIVATED])
    retried = stack.sql("SELECT attempts FROM journal WHERE resource_id = :g ORDER BY seq",
                        g=group_id)
    assert retried[0][0] >= 2, retried


def assert_status_clean(stack: Stack, tenant_name: str) -> None:
    report = json.loads(stack.run(["scimflow", "status", "--json"]))
    row = next(row for row in report["tenants"] if row["tenant"] == tenant_name)
    assert (row["backlog"], row["retrying"], row["dead_letters"]) == (0, 0, 0), row
    assert report["pipeline"]["stalled"] is False, report
