"""Claiming a drain batch: deprovisioning first, then every waiting tenant in fair turns."""

from __future__ import annotations

from datetime import UTC, datetime

from scimflow.pipeline.store import claim
from tests.integration.conftest import Services
from tests.integration.test_drain import patch_user

LATER = datetime(2030, 1, 1, tzinfo=UTC)


def _claim(services: Services, limit: int, tenant_id: str | None = None) -> list[tuple[str, str]]:
    with services.sessions.begin() as session:
        return claim.ready_resources(session, now=LATER, limit=limit, tenant_id=tenant_id)


def test_a_batch_takes_turns_between_tenants_instead_of_oldest_first(services: Services) -> None:
    big, small, third = services.tenant("big"), services.tenant("small"), services.tenant("third")
    big_users = [services.user(big, f"b{i:03}@example.com") for i in range(30)]
    small_user = services.user(small, "s@example.com")
    third_users = [services.user(third, f"t{i}@example.com") for i in range(2)]

    claimed = _claim(services, limit=6)

    # First turn: each tenant's oldest resource; second turn: the next ones, oldest first.
    assert claimed == [
        (big.id, big_users[0]), (small.id, small_user), (third.id, third_users[0]),
        (big.id, big_users[1]), (third.id, third_users[1]), (big.id, big_users[2]),
    ]


def test_deprovisioning_is_claimed_alone_before_every_tenants_turn(services: Services) -> None:
    big, small = services.tenant("big"), services.tenant("small")
    for i in range(10):
        services.user(big, f"b{i}@example.com")
    leaver = services.user(small, "leaver@example.com")
    services.drain()
    for i in range(10, 20):
        services.user(big, f"b{i}@example.com")
    patch_user(services, small, leaver, active=False)

    # While it waits, a batch holds only deprovisioning: small, so it applies at once.
    assert _claim(services, limit=3) == [(small.id, leaver)]
    report = services.drainer.drain_once()
    assert (report.deprovisioned, report.more_waiting) == (1, True)
    assert len(_claim(services, limit=3)) == 3


def test_a_claim_can_be_restricted_to_one_tenant(services: Services) -> None:
    big, small = services.tenant("big"), services.tenant("small")
    for i in range(5):
        services.user(big, f"b{i}@example.com")
    small_user = services.user(small, "s@example.com")

    assert _claim(services, limit=10, tenant_id=small.id) == [(small.id, small_user)]
    assert {tenant for tenant, _ in _claim(services, limit=10, tenant_id=big.id)} == {big.id}


def test_nothing_waiting_claims_nothing(services: Services) -> None:
    services.tenant("idle")
    assert _claim(services, limit=10) == []
