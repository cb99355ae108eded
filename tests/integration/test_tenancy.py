"""Tenants and bearer tokens: issued hashed, rotated, revoked, listed; a recently valid token is
cached briefly; a tenant disabled, enabled, deleted with all its rows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from scimflow.pipeline.errors import NotFound, Unauthorized
from scimflow.pipeline.services.tenancy import Tenancy, TenantStillEnabled
from scimflow.pipeline.store.models import ApiToken, Base, Tenant, User
from scimflow.pipeline.store.tenants import TENANT_TABLES
from tests.integration.conftest import Services


def test_tokens_are_stored_only_as_digests(services: Services) -> None:
    issued = Tenancy(services.sessions).create("acme")
    with services.sessions.begin() as session:
        stored = [token.token_hash for token in session.query(ApiToken)]
    assert issued.secret not in stored
    assert len(stored) == 1 and len(stored[0]) == 64


def test_rotation_keeps_old_tokens_until_revoked(services: Services) -> None:
    tenancy = Tenancy(services.sessions)
    first = tenancy.create("acme")
    second = tenancy.rotate("acme")
    assert tenancy.authenticate(first.secret).id == tenancy.authenticate(second.secret).id
    tenancy.revoke("acme", first.id)
    with pytest.raises(Unauthorized):
        tenancy.authenticate(first.secret)
    assert tenancy.authenticate(second.secret).name == "acme"


def test_a_cached_token_is_revoked_within_the_cache_time(services: Services) -> None:
    now = [0.0]
    tenancy = Tenancy(services.sessions, cache_seconds=5, monotonic=lambda: now[0])
    issued = tenancy.create("acme")
    tenancy.authenticate(issued.secret)
    tenancy.revoke("acme")
    assert tenancy.authenticate(issued.secret).name == "acme"  # still cached
    now[0] += 5.1
    with pytest.raises(Unauthorized):
        tenancy.authenticate(issued.secret)


def test_failures_are_never_cached(services: Services) -> None:
    tenancy = Tenancy(services.sessions, cache_seconds=60)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tenancy.authenticate("scimflow_not-a-token")


def test_a_disabled_tenant_does_not_authenticate_until_enabled(services: Services) -> None:
    tenancy = Tenancy(services.sessions)
    issued = tenancy.create("acme")
    tenancy.disable("acme")
    with pytest.raises(Unauthorized):
        tenancy.authenticate(issued.secret)
    assert [t.disabled_at is not None for t in tenancy.all()] == [True]
    tenancy.enable("acme")
    assert tenancy.authenticate(issued.secret).name == "acme"


def test_revoking_a_token_id_the_tenant_does_not_own_is_not_found(services: Services) -> None:
    tenancy = Tenancy(services.sessions)
    tenancy.create("acme")
    other = tenancy.create("globex")
    with pytest.raises(NotFound):
        tenancy.revoke("acme", other.id)  # globex's token, not acme's
    with pytest.raises(NotFound):
        tenancy.revoke("acme", "no-such-token")
    assert tenancy.authenticate(other.secret).name == "globex"


def test_tokens_are_listed_without_secrets(services: Services) -> None:
    tenancy = Tenancy(services.sessions)
    first = tenancy.create("acme")
    second = tenancy.rotate("acme", revoke_others=True)
    listed = tenancy.tokens("acme")
    assert [(t.id, t.revoked_at is not None) for t in listed] == [(first.id, True),
                                                                   (second.id, False)]
    assert first.secret not in repr(listed)


def test_an_enabled_tenant_is_not_deleted(services: Services) -> None:
    tenancy = Tenancy(services.sessions)
    tenancy.create("acme")
    with pytest.raises(TenantStillEnabled):
        tenancy.delete("acme")
    assert [t.name for t in tenancy.all()] == ["acme"]


def test_deleting_a_tenant_removes_every_row_it_owns_and_nothing_else(
    services: Services,
) -> None:
    tenancy = Tenancy(services.sessions)
    doomed, kept = tenancy.create("acme").tenant, tenancy.create("globex").tenant
    for tenant in (doomed, kept):
        alice = services.user(tenant, "alice")
        services.group(tenant, "staff", [alice])
        services.user(tenant, "bob", active=False)
    services.drain()
    tenancy.disable("acme")
    _, deleted = tenancy.delete("acme")
    assert deleted["users"] == 2 and deleted["groups"] == 1 and deleted["memberships"] == 1
    with services.sessions.begin() as session:
        for table in (*TENANT_TABLES, Tenant):
            owners = set(session.scalars(select(table.__table__.c[_tenant_column(table)])))
            assert doomed.id not in owners, table.__tablename__
        assert session.scalar(select(func.count()).select_from(User)
                              .where(User.tenant_id == kept.id)) == 2
    with pytest.raises(NotFound):
        tenancy.find("acme")


def _tenant_column(table: type[Base]) -> str:
    return "id" if table is Tenant else "tenant_id"
