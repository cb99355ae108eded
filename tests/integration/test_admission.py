"""Admission control against a real database: 429 with an honest Retry-After, reads untouched."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from scimflow.pipeline.errors import TooManyRequests
from scimflow.pipeline.services.admission import Admission, AdmissionLimits
from scimflow.pipeline.store.tenants import TenantRef
from tests.integration.conftest import Services


@pytest.fixture
def clock() -> Iterator[list[float]]:
    yield [0.0]


@pytest.fixture
def tenant(services: Services) -> TenantRef:
    return services.tenant("acme")


def fill(services: Services, tenant: TenantRef, count: int) -> None:
    for index in range(count):
        services.user(tenant, f"u{index}")


def make_admission(services: Services, clock: list[float], **limits: Any) -> Admission:
    return Admission(
        services.sessions, AdmissionLimits(refresh_seconds=1.0, **limits),
        monotonic=lambda: clock[0], rng=lambda: 0.0,
    )


def test_writes_over_the_tenant_backlog_get_429_with_retry_after(
    services: Services, tenant: TenantRef, clock: list[float]
) -> None:
    """Beyond the backlog limit a write is refused; Retry-After is a whole number of seconds."""
    admission = make_admission(services, clock, tenant_backlog=3, assumed_drain_rate=1.0)
    fill(services, tenant, 4)
    clock[0] += 2  # let the snapshot refresh
    with pytest.raises(TooManyRequests) as refused, admission.admit(tenant.id):
        pass
    assert refused.value.status == 429
    assert isinstance(refused.value.retry_after, int)
    assert refused.value.retry_after >= 1


def test_other_tenants_are_not_throttled_by_one_tenants_backlog(
    services: Services, tenant: TenantRef, clock: list[float]
) -> None:
    admission = make_admission(services, clock, tenant_backlog=3)
    fill(services, tenant, 4)
    clock[0] += 2
    with admission.admit("another-tenant"):
        pass


def test_the_global_backlog_limit_applies_to_every_tenant(
    services: Services, tenant: TenantRef, clock: list[float]
) -> None:
    admission = make_admission(services, clock, global_backlog=2)
    fill(services, tenant, 3)
    clock[0] += 2
    with pytest.raises(TooManyRequests), admission.admit("another-tenant"):
        pass


def test_draining_the_backlog_reopens_admission(
    services: Services, tenant: TenantRef, clock: list[float]
) -> None:
    admission = make_admission(services, clock, tenant_backlog=3)
    fill(services, tenant, 4)
    clock[0] += 2
    with pytest.raises(TooManyRequests), admission.admit(tenant.id):
        pass
    services.drainer.drain()
    clock[0] += 2
    with admission.admit(tenant.id):
        pass
    assert admission.snapshot().drain_rate > 0


def test_concurrent_writes_of_one_tenant_are_capped(
    services: Services, tenant: TenantRef, clock: list[float]
) -> None:
    admission = make_admission(services, clock, tenant_in_flight=2)
    entered, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with admission.admit(tenant.id):
            entered.wait()
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    entered.wait()
    with pytest.raises(TooManyRequests), admission.admit(tenant.id):
        pass
    release.set()
    for thread in holders:
        thread.join()
    with admission.admit(tenant.id):
        pass
