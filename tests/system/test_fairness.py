"""One tenant's initial sync does not starve the others.

A large tenant's backlog is built while the workers are paused (so it is all waiting at once,
with a queue full of that tenant's doorbells), then a small tenant writes one user, and the
workers resume. Every drain batch gives each tenant with waiting work its turn
(`pipeline/store/claim.py`), so the small tenant's user must be applied among the first
batches, not after the large backlog. The journal's `applied_at` stamps tell what was applied
before it.
"""

from __future__ import annotations

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.system.idp import USER_SCHEMA
from tests.system.stack import Stack

pytestmark = pytest.mark.timeout(300)

BACKLOG = 4000
SENDERS = 16


def _post_users(stack: Stack, token: str, prefix: str, indexes: range) -> None:
    with stack.client(token, timeout=60) as http:
        for index in indexes:
            name = f"{prefix}{index:05d}@big.example.com"
            response = http.post("/Users", json={
                "schemas": [USER_SCHEMA], "userName": name, "externalId": f"{prefix}{index}"})
            assert response.status_code == 201, response.text


def _build_backlog(stack: Stack, token: str) -> None:
    share = BACKLOG // SENDERS
    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(lambda k: _post_users(stack, token, "big", range(k * share,
                                                                      (k + 1) * share)),
                      range(SENDERS)))


def test_a_small_tenants_write_is_applied_ahead_of_a_large_tenants_backlog(stack: Stack) -> None:
    big = stack.create_tenant(f"big-{uuid.uuid4().hex[:6]}")
    small = stack.create_tenant(f"small-{uuid.uuid4().hex[:6]}")
    worker = stack.processes["worker1"]
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        _build_backlog(stack, big["token"])
        _post_users(stack, small["token"], "small", range(1))
        assert stack.backlog() == BACKLOG + 1
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    stack.wait_until_applied(timeout=180)

    applied_before_small = stack.sql(
        "SELECT count(*) FROM journal big, journal small"
        " WHERE big.tenant_id = :big AND small.tenant_id = :small"
        " AND big.applied_at < small.applied_at",
        big=big["tenant_id"], small=small["tenant_id"],
    )[0][0]
    # Two worker processes claim batches of 200: the small tenant's turn comes in the first
    # batch either of them claims. Without fair turns it comes after the whole backlog.
    assert applied_before_small <= 2 * 200, (
        f"{applied_before_small} of the large tenant's {BACKLOG} changes were applied first")
