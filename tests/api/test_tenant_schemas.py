"""A tenant's own extension schema (RFC 7643 §7), end to end: declared, advertised, validated,
stored, rendered, patched and applied by the worker; invisible to other tenants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from falcon import testing
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.services import ApiServices
from scimflow.pipeline.errors import InvalidValue
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.drain import Drainer
from scimflow.pipeline.services.tenant_protocols import TenantProtocols
from scimflow.pipeline.store.tenant_schemas import Declared
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import client_for

BADGE = "urn:example:acme:2.0:Badge"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BADGE_SCHEMA: dict[str, Any] = {
    "id": BADGE,
    "name": "Badge",
    "description": "Acme's door badge",
    "attributes": [
        {"name": "badgeNumber", "type": "string", "multiValued": False, "required": True,
         "caseExact": True, "mutability": "readWrite", "returned": "default",
         "uniqueness": "none"},
        {"name": "floor", "type": "integer", "multiValued": False, "required": False,
         "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
    ],
}


@pytest.fixture
def declared(protocols: TenantProtocols, acme: IssuedToken) -> None:
    protocols.declare(acme.tenant.id, Declared("User", BADGE_SCHEMA, required=False))


def test_a_declared_extension_is_advertised_to_its_tenant_only(
    tenant_services: ApiServices, acme: IssuedToken, globex: IssuedToken, declared: None
) -> None:
    mine = client_for(tenant_services, acme).simulate_get("/scim/v2/Schemas").json
    theirs = client_for(tenant_services, globex).simulate_get("/scim/v2/Schemas").json
    assert BADGE in {s["id"] for s in mine["Resources"]}
    assert BADGE not in {s["id"] for s in theirs["Resources"]}
    user_type = client_for(tenant_services, acme).simulate_get("/scim/v2/ResourceTypes/User")
    assert {"schema": BADGE, "required": False} in user_type.json["schemaExtensions"]


def test_extension_values_are_validated_stored_rendered_and_applied(
    tenant_services: ApiServices, acme: IssuedToken, declared: None,
    sessions: sessionmaker[Session], protocols: TenantProtocols,
) -> None:
    client = client_for(tenant_services, acme)
    created = client.simulate_post("/scim/v2/Users", json={
        "schemas": [USER, BADGE], "userName": "ada", BADGE: {"badgeNumber": "B-7", "floor": 3},
    })
    assert created.status_code == 201, created.text
    assert created.json[BADGE] == {"badgeNumber": "B-7", "floor": 3}
    user_id = created.json["id"]
    bad = client.simulate_post("/scim/v2/Users", json={
        "schemas": [USER, BADGE], "userName": "bob", BADGE: {"floor": "three"},
    })
    assert bad.status_code == 400 and bad.json["scimType"] == "invalidValue"
    patched = client.simulate_patch(f"/scim/v2/Users/{user_id}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": f"{BADGE}:floor", "value": 4}],
    })
    assert patched.status_code == 200, patched.text
    assert patched.json[BADGE]["floor"] == 4
    found = client.simulate_get("/scim/v2/Users", params={"filter": f'{BADGE}:floor eq 4'})
    assert found.json["totalResults"] == 1
    report = Drainer(sessions, protocols).drain()
    assert (report.applied, report.dead) == (2, 0)
    with sessions.begin() as session:
        raw = session.execute(text("SELECT data FROM users WHERE id = :id"), {"id": user_id})
        stored = raw.scalar_one()
        data = json.loads(stored) if isinstance(stored, str) else stored  # SQLite: JSON text
        assert data[BADGE] == {"badgeNumber": "B-7", "floor": 4}


def test_another_tenant_cannot_use_the_extension(
    tenant_services: ApiServices, globex: IssuedToken, declared: None
) -> None:
    response = client_for(tenant_services, globex).simulate_post("/scim/v2/Users", json={
        "schemas": [USER, BADGE], "userName": "eve", BADGE: {"badgeNumber": "X"},
    })
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_an_invalid_declaration_is_refused_and_nothing_is_stored(
    protocols: TenantProtocols, acme: IssuedToken
) -> None:
    broken = {**BADGE_SCHEMA, "attributes": [{"name": "1bad", "type": "string"}]}
    with pytest.raises(InvalidValue):
        protocols.declare(acme.tenant.id, Declared("User", broken, required=False))
    assert protocols.for_tenant(acme.tenant.id).registry.resource_type("User").extensions == (
        default_registry().resource_type("User").extensions
    )


def test_a_withdrawn_extension_is_no_longer_accepted(
    tenant_services: ApiServices, protocols: TenantProtocols, acme: IssuedToken, declared: None
) -> None:
    protocols.forget(acme.tenant.id, BADGE)
    client: testing.TestClient = client_for(tenant_services, acme)
    response = client.simulate_post("/scim/v2/Users", json={
        "schemas": [USER, BADGE], "userName": "ada", BADGE: {"badgeNumber": "B-7"},
    })
    assert response.status_code == 400
