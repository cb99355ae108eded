"""Application keys on SQLite and PostgreSQL: issued once, stored as digests, scoped to
tenants, revoked, cached briefly, never confused with a tenant's SCIM token; and their CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
import re

import pytest
from sqlalchemy import select

from scimflow.ops import app_keys as app_key_commands
from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import tenants
from scimflow.pipeline.store.app_keys import AppGrant
from scimflow.pipeline.store.event_tables import AppKey
from tests.integration.conftest import Services

KEY_FORMAT = re.compile(r"sfk_[A-Za-z0-9_-]{43}")


class Ticking:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_shown_once_and_only_its_digest_is_stored(services: Services) -> None:
    issued = AppKeys(services.sessions).create(label="crm")
    assert KEY_FORMAT.fullmatch(issued.key) and issued.tenants is None
    with services.sessions.begin() as session:
        row = session.execute(select(AppKey)).scalar_one()
        assert row.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
        assert issued.key not in (row.id, row.label, row.key_hash)


def test_tenants_are_given_by_name_or_id_and_an_unknown_one_is_refused(
    services: Services,
) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    keys = AppKeys(services.sessions)
    issued = keys.create(tenants=["acme", globex.id, "globex"])
    assert issued.tenants == [acme.id, globex.id]
    assert keys.authenticate(issued.key) == AppGrant(issued.id, frozenset({acme.id, globex.id}))
    with pytest.raises(NotFound, match="No tenant 'initech'"):
        keys.create(tenants=["acme", "initech"])
    assert [key.id for key in keys.list()] == [issued.id]


def test_a_tenant_scim_token_authenticates_no_application(services: Services) -> None:
    acme = services.tenant("acme")
    with services.sessions.begin() as session:
        token = tenants.issue_token(session, acme, now=utc_now())
    keys = AppKeys(services.sessions)
    assert keys.authenticate(token.secret) is None
    assert keys.authenticate("sfk_" + "A" * 43) is None


def test_a_revoked_key_is_refused_once_its_cache_expires(services: Services) -> None:
    monotonic = Ticking()
    keys = AppKeys(services.sessions, cache_seconds=5.0, monotonic=monotonic)
    issued = keys.create()
    assert keys.authenticate(issued.key) == AppGrant(issued.id, None)

    assert keys.revoke(issued.id) is True
    assert keys.revoke(issued.id) is False  # already revoked
    assert keys.authenticate(issued.key) is not None  # remembered for cache_seconds
    monotonic.now += 5.1
    assert keys.authenticate(issued.key) is None
    assert keys.list()[0].revoked_at is not None
    with pytest.raises(NotFound, match="No application key 'nope'"):
        keys.revoke("nope")


def test_the_cli_creates_lists_and_revokes_keys(
    services: Services, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = services.tenant("acme")
    settings = Settings(database_url=database_url)

    def run(*argv: str) -> str:
        parser = argparse.ArgumentParser(prog="scimflow")
        app_key_commands.add_parsers(parser.add_subparsers())
        args = parser.parse_args(argv)
        assert args.handler(settings, args) == 0
        return capsys.readouterr().out

    created = json.loads(run("app-key", "create", "--tenant", "acme", "--label", "crm",
                             "--json"))
    assert set(created) == {"id", "key", "tenants"} and created["tenants"] == [acme.id]
    assert KEY_FORMAT.fullmatch(created["key"])
    text = run("app-key", "create")
    assert "every tenant" in text and "shown once" in text

    listed = run("app-key", "list")
    assert listed.splitlines()[0].split() == ["ID", "LABEL", "TENANTS", "CREATED", "REVOKED"]
    assert created["id"] in listed and created["key"] not in listed
    assert run("app-key", "revoke", created["id"]).startswith(
        f"application key {created['id']} revoked")
    revoked = json.loads(run("app-key", "list", "--json"))
    assert [key["revoked_at"] is not None for key in revoked] == [True, False]

