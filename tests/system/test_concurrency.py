"""Concurrent POSTs race on the unique keys: one user, decided synchronously, never a 5xx.

50 requests are released at the same moment from 50 threads against the API under its default
server, so several are in flight in different processes and threads at once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.system.idp import (
    ERROR_SCHEMA,
    SCIM_MEDIA_TYPE,
    USER_SCHEMA,
    ScimClient,
    fire_together,
)
from tests.system.stack import Stack

RACERS = 50


def okta_user(user_name: str, external_id: str) -> dict[str, Any]:
    """The Okta create body (tests/samples/idp/okta/okta-create-user.json), renamed."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Race", "familyName": "Condition"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Race Condition",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def race(stack: Stack, token: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    with stack.client(token, timeout=60) as http:
        scim = ScimClient(http, headers={"Content-Type": SCIM_MEDIA_TYPE}, suspend_all=False)
        responses = fire_together(scim, "POST", "/Users", bodies)
    statuses = Counter(r.status_code for r in responses)
    assert not [s for s in statuses if s >= 500], f"5xx: {statuses}\n{stack.log('api')[-3000:]}"
    return responses


@pytest.mark.timeout(180)
def test_concurrent_creates_of_one_user_name_admit_exactly_one(module_stack: Stack) -> None:
    tenant = module_stack.create_tenant(f"race-{uuid.uuid4().hex[:8]}")
    # userName is case-insensitive (RFC 7643 §4.1.1): the spellings are one userName.
    spellings = ("Dup.User@example.com", "dup.user@example.com", "DUP.USER@EXAMPLE.COM")
    bodies = [
        okta_user(spellings[i % len(spellings)], f"00u-race-{i:02d}") for i in range(RACERS)
    ]

    responses = race(module_stack, tenant["token"], bodies)

    assert Counter(r.status_code for r in responses) == {201: 1, 409: RACERS - 1}
    for refused in (r for r in responses if r.status_code == 409):
        body = refused.json()
        assert body["schemas"] == [ERROR_SCHEMA]
        assert (body["status"], body["scimType"]) == ("409", "uniqueness")
    winner = next(r for r in responses if r.status_code == 201).json()

    module_stack.wait_until_applied(timeout=60)
    rows = module_stack.sql(
        "SELECT id, user_name, external_id FROM users WHERE tenant_id = :t", t=tenant["tenant_id"]
    )
    assert [tuple(row) for row in rows] == [
        (winner["id"], winner["userName"], winner["externalId"])
    ]
    assert journal_entries(module_stack, tenant["tenant_id"]) == 1


@pytest.mark.timeout(180)
def test_concurrent_identical_creates_are_one_user(module_stack: Stack) -> None:
    """An IdP retrying the same POST (same externalId, same payload): every attempt gets 201
    and the one resource."""
    tenant = module_stack.create_tenant(f"replay-{uuid.uuid4().hex[:8]}")
    body = okta_user("retried.user@example.com", "00uretriedA1b2C3d4e5")

    responses = race(module_stack, tenant["token"], [body] * RACERS)

    assert Counter(r.status_code for r in responses) == {201: RACERS}, [
        r.text for r in responses if r.status_code != 201
    ][:5]
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert {r.headers["Location"] for r in responses} == {responses[0].headers["Location"]}

    module_stack.wait_until_applied(timeout=60)
    rows = module_stack.sql(
        "SELECT id, user_name FROM users WHERE tenant_id = :t", t=tenant["tenant_id"]
    )
    assert [tuple(row) for row in rows] == [(responses[0].json()["id"], "retried.user@example.com")]
    assert journal_entries(module_stack, tenant["tenant_id"]) == 1


def journal_entries(stack: Stack, tenant_id: str) -> int:
    return int(stack.sql("SELECT count(*) FROM journal WHERE tenant_id = :t", t=tenant_id)[0][0])
