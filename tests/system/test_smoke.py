"""The compose commands, run natively, make a working service."""

from __future__ import annotations

from tests.system.stack import Stack

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "ada@example.com",
    "externalId": "00u-ada",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "active": True,
}


def test_a_write_is_acknowledged_then_applied_by_a_celery_worker(stack: Stack) -> None:
    """POST → 201 from gunicorn, then a real Celery worker applies it to PostgreSQL."""
    tenant = stack.create_tenant("acme")
    with stack.client(tenant["token"]) as client:
        created = client.post("/Users", json=USER)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert created.headers["Location"] == f"{stack.base_url}/Users/{user_id}"
    stack.wait_until_applied(timeout=60)
    rows = stack.sql("SELECT user_name, active FROM users WHERE id = :id", id=user_id)
    assert rows == [("ada@example.com", True)]
