"""Bearer tokens: issued hashed, rotated, revoked; a recently valid token is cached briefly."""

from __future__ import annotations

import pytest

from scimflow.pipeline.errors import Unauthorized
from scimflow.pipeline.store.models import ApiToken
from scimflow.pipeline.tenancy import Tenancy
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
