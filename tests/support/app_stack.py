"""The real API (the production composition, `api.wsgi.build_app`) served over HTTP on
loopback, over a test database, with the drain run in-process on demand: what the application
API's tests drive with the Python client and SCIM requests.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.wsgi import build_app
from scimflow.ops.serve import local_server
from scimflow.pipeline.passwords.crypto import PasswordPolicy
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry
from scimflow.pipeline.services.app_keys import AppKeys
from scimflow.pipeline.services.drain import Drainer
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.tenants import TenantRef

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Rings:
    """The doorbell port, remembering each ring (the tests drain when they choose)."""

    rings: list[tuple[str, bool]] = field(default_factory=list)

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        self.rings.append((tenant_id, urgent))


@dataclass(frozen=True)
class ScimAnswer:
    status: int
    body: Any


@dataclass
class AppStack:
    url: str
    sessions: sessionmaker[Session]
    drainer: Drainer

    def tenant(self, name: str) -> tuple[TenantRef, str]:
        """A new tenant and its SCIM token."""
        issued = Tenancy(self.sessions).create(name)
        return issued.tenant, issued.secret

    def app_key(self, *tenants: str) -> str:
        """A new application key (scoped to these tenants if any are named)."""
        return AppKeys(self.sessions).create(tenants=list(tenants) or None).key

    def drain(self) -> None:
        """Apply every acknowledged write, as the workers would."""
        while True:
            report = self.drainer.drain()
            if report.applied == 0:
                return

    def scim(self, token: str, method: str, path: str, body: Any = None) -> ScimAnswer:
        """One SCIM request, as an IdP sends it."""
        return request(self.url + "/scim/v2" + path, method, token, body, SCIM_JSON)


def request(url: str, method: str, token: str, body: Any, content_type: str) -> ScimAnswer:
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            raw = response.read()
            return ScimAnswer(response.status, json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return ScimAnswer(error.code, json.loads(raw) if raw else None)


@contextmanager
def running_app_stack(database_url: str) -> Iterator[AppStack]:
    """The API on 127.0.0.1 (an ephemeral port) over `database_url`, whose schema exists."""
    settings = Settings(database_url=database_url, public_url="http://127.0.0.1",
                        password_policy=PasswordPolicy.IGNORE, token_cache_seconds=0.0)
    app = build_app(settings, Rings())
    server = local_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    engine = make_engine(settings, "worker")
    sessions = make_sessions(engine)
    try:
        yield AppStack(f"http://127.0.0.1:{server.server_port}", sessions,
                       Drainer(sessions, ScimProtocol(default_registry())))
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()
