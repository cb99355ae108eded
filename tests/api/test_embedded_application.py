"""`scimflow serve`'s embedded mode answers the application API too: a JIT login through the
real app creates a user, the in-process worker applies it, and a registered session ends when
the IdP deprovisions the user."""

from __future__ import annotations

import time

from falcon import testing
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scimflow.ops.serve import embedded_process
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.login_policies import LoginPolicies
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.models import User
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import BASE

ISSUER = "https://acme.okta.example"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _applied(sessions: sessionmaker[Session], user_id: str) -> User | None:
    with sessions() as session:
        return session.scalar(select(User).where(User.id == user_id))


def test_a_jit_login_applies_and_its_session_ends_on_deprovisioning(
    settings: Settings, sessions: sessionmaker[Session], acme: IssuedToken
) -> None:
    app, workers = embedded_process(settings)
    client = testing.TestClient(app)
    key = AppKeys(sessions).create(tenants=[acme.tenant.id]).key
    LoginPolicies(sessions).update("acme", issuers=[ISSUER])
    app_headers = {"Authorization": f"Bearer {key}"}
    workers.start()
    try:
        login = client.simulate_post("/app/v1/tenants/acme/logins", headers=app_headers,
                                     json={"issuer": ISSUER, "subject": "ann@acme.example"})
        assert login.status_code == 200, login.text
        assert (login.json["decision"], login.json["action"]) == ("allow", "created")
        user_id = login.json["user"]["id"]
        registered = client.simulate_post("/app/v1/tenants/acme/sessions", headers=app_headers,
                                          json={"user": {"id": user_id}})
        assert registered.status_code == 201, registered.text
        deadline = time.monotonic() + 20
        while _applied(sessions, user_id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _applied(sessions, user_id) is not None
        patched = client.simulate_patch(
            f"{BASE}/Users/{user_id}", headers={"Authorization": f"Bearer {acme.secret}"},
            json={"schemas": [PATCH_SCHEMA],
                  "Operations": [{"op": "replace", "path": "active", "value": False}]})
        assert patched.status_code == 200, patched.text
        check = client.simulate_get(f"/app/v1/tenants/acme/sessions/{registered.json['id']}",
                                    headers=app_headers)
    finally:
        workers.stop()
    assert (check.json["status"], check.json["reason"]) == ("revoked", "deprovisioned")
    assert check.json["user"]["source"] == "scim"
