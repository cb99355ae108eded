"""The API over real services on a SQLite file database, driven through Falcon's TestClient.

Only the dispatcher is fake (it records rings instead of waking workers), so every status the
tests see comes from the same WriteService / ReadService / Tenancy the service runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.app import create_app
from scimflow.api.services import ApiServices
from scimflow.pipeline.ports import Clock, utc_now
from scimflow.pipeline.scim.discovery import Capabilities
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.reads import ReadService
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.services.writes import WriteService
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.models import Base
from scimflow.pipeline.store.tenants import IssuedToken
from tests.conftest import make_protocol, read_sample

PUBLIC_URL = "https://scim.example.test"
BASE = "/scim/v2"
SCIM_JSON = "application/scim+json; charset=utf-8"
MAX_BODY_BYTES = 64 * 1024
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass
class RecordingDispatcher:
    """The Dispatcher port, recording each ring instead of waking workers."""

    rings: list[tuple[str, bool]] = field(default_factory=list)

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self.rings.append((tenant_id, urgent))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'scimflow.sqlite3'}",
        public_url=PUBLIC_URL,
        max_body_bytes=MAX_BODY_BYTES,
        filter_max_results=50,
    )


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings, "tool")
    Base.metadata.create_all(engine)
    yield make_sessions(engine)
    engine.dispose()


@pytest.fixture
def tenancy(sessions: sessionmaker[Session]) -> Tenancy:
    return Tenancy(sessions)


@pytest.fixture
def acme(tenancy: Tenancy) -> IssuedToken:
    return tenancy.create("acme")


@pytest.fixture
def globex(tenancy: Tenancy) -> IssuedToken:
    return tenancy.create("globex")


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def protocol() -> ScimProtocol:
    return make_protocol()


def api_services(
    settings: Settings,
    sessions: sessionmaker[Session],
    tenancy: Tenancy,
    dispatcher: RecordingDispatcher,
    protocol: ScimProtocol,
    *,
    clock: Clock = utc_now,
) -> ApiServices:
    """The API's services over one protocol for every tenant, writing with `clock`."""
    return ApiServices(
        settings=settings,
        tenancy=tenancy,
        writes=WriteService(sessions, protocol, dispatcher, clock=clock),
        reads=ReadService(sessions, protocol, max_results=settings.filter_max_results),
        registry=protocol.registry,
        capabilities=Capabilities(filter_max_results=settings.filter_max_results),
        ready=lambda: None,
    )


@pytest.fixture
def services(
    settings: Settings,
    sessions: sessionmaker[Session],
    tenancy: Tenancy,
    dispatcher: RecordingDispatcher,
    protocol: ScimProtocol,
) -> ApiServices:
    return api_services(settings, sessions, tenancy, dispatcher, protocol)


@pytest.fixture
def protocols(sessions: sessionmaker[Session]) -> TenantProtocols:
    """Per-tenant protocols read afresh at every request (no cache), for extension schemas."""
    return TenantProtocols(sessions, default_registry(), cache_seconds=0)


@pytest.fixture
def tenant_services(
    settings: Settings, sessions: sessionmaker[Session], tenancy: Tenancy,
    dispatcher: RecordingDispatcher, protocols: TenantProtocols,
) -> ApiServices:
    """The API's services with per-tenant protocols, so tenants' declared schemas apply."""
    return ApiServices(
        settings=settings, tenancy=tenancy,
        writes=WriteService(sessions, protocols, dispatcher),
        reads=ReadService(sessions, protocols, max_results=settings.filter_max_results),
        registry=default_registry(), capabilities=Capabilities(), ready=lambda: None,
        protocols=protocols,
    )


def client_for(services: ApiServices, token: IssuedToken | None) -> testing.TestClient:
    headers = {"Authorization": f"Bearer {token.secret}"} if token else None
    return testing.TestClient(create_app(services), headers=headers)


@pytest.fixture
def client(services: ApiServices, acme: IssuedToken) -> testing.TestClient:
    """Acme's client: every request carries acme's bearer token."""
    return client_for(services, acme)


@pytest.fixture
def globex_client(services: ApiServices, globex: IssuedToken) -> testing.TestClient:
    return client_for(services, globex)


@pytest.fixture
def anonymous(services: ApiServices) -> testing.TestClient:
    return client_for(services, None)


def scim_body(body: Any) -> dict[str, Any]:
    """simulate_* arguments sending `body` as application/scim+json, as Okta does."""
    return {"body": json.dumps(body), "headers": {"Content-Type": SCIM_JSON}}


def assert_scim_error(
    result: testing.Result, status: int, scim_type: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 7644 §3.12 error body with this status (and scimType)."""
    assert result.status_code == status, result.text
    assert result.headers["Content-Type"] == SCIM_JSON
    body: dict[str, Any] = result.json
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert isinstance(body["detail"], str) and body["detail"]
    assert body.get("scimType") == scim_type
    return body


def create_user(
    client: testing.TestClient, sample: str = "idp/okta/okta-create-user.json", **changes: Any
) -> dict[str, Any]:
    body = read_sample(sample) | changes
    result = client.simulate_post(f"{BASE}/Users", **scim_body(body))
    assert result.status_code == 201, result.text
    created: dict[str, Any] = result.json
    return created


def create_group(client: testing.TestClient, display_name: str, *members: str) -> dict[str, Any]:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
        "members": [{"value": member} for member in members],
    }
    result = client.simulate_post(f"{BASE}/Groups", **scim_body(body))
    assert result.status_code == 201, result.text
    created: dict[str, Any] = result.json
    return created
