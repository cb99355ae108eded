"""`scimflow serve`'s embedded mode delivers webhooks too: a SCIM write through the real app,
applied by the in-process worker, reaches a real HTTP receiver, signed, from the delivery
thread (no broker, no events worker)."""

from __future__ import annotations

import time
from dataclasses import replace

from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.ops.serve import embedded_process
from scimflow.pipeline.events.signing import verify
from scimflow.pipeline.services.webhooks import Webhooks
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import BASE
from tests.support.receiver import running_receiver

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def test_an_applied_write_reaches_the_webhook_receiver(
    settings: Settings, sessions: sessionmaker[Session], acme: IssuedToken
) -> None:
    settings = replace(settings, webhook_allow_private_networks=True)
    app, workers = embedded_process(settings)
    client = testing.TestClient(app)
    headers = {"Authorization": f"Bearer {acme.secret}"}
    with running_receiver() as receiver:
        added = Webhooks(sessions, allow_private=True).add("acme", receiver.url())
        workers.start()
        try:
            created = client.simulate_post(f"{BASE}/Users", headers=headers, json={
                "schemas": [USER_SCHEMA], "userName": "ann"})
            assert created.status_code == 201, created.text
            receiver.wait_for(lambda got: len(got) >= 1, timeout=20)
        finally:
            workers.stop()
    [request] = receiver.snapshot()
    verify(request.body, request.headers, added.secret, now=int(time.time()))
    assert request.document["type"] == "user.created"
    assert request.document["resource"]["id"] == created.json["id"]
