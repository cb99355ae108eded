"""The pure parts of the operator view: naming the IdP from a User-Agent, a command in words,
and the API middleware telling the traffic recorder what it saw (a recording port)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import falcon
import falcon.testing
import pytest

from scimflow.api.observation import TrafficObservationMiddleware
from scimflow.pipeline.commands import Command, CommandKind
from scimflow.pipeline.errors import TooManyRequests
from scimflow.pipeline.idp_dialects import RAW_AGENT_LENGTH, dialect_of
from scimflow.pipeline.services.history_words import summarise
from scimflow.pipeline.store.tenants import TenantRef


@pytest.mark.parametrize(("agent", "name"), [
    ("Okta SCIM Client 1.0.0", "Okta"),
    ("Microsoft.Identity.Provisioning.Scim/1.0", "Microsoft Entra ID"),
    ("Azure AD SCIM Client", "Microsoft Entra ID"),
    ("Microsoft Azure Provisioning", "Microsoft Entra ID"),
    ("Google-Apps-Provisioning/1.0", "Google Workspace"),
    ("OneLogin SCIM", "OneLogin"),
    ("curl/8.5.0", "curl/8.5.0"),
    ("x" * 300, "x" * RAW_AGENT_LENGTH),
    ("bad\x01agent", "bad?agent"),
    ("", None),
    (None, None),
])
def test_the_idp_is_named_from_its_user_agent(agent: str | None, name: str | None) -> None:
    assert dialect_of(agent) == name


def patch(*operations: dict[str, Any]) -> Command:
    return Command(CommandKind.PATCH, "Group", "g", operations=operations)


@pytest.mark.parametrize(("command", "words"), [
    (Command(CommandKind.CREATE, "User", "u", resource={"userName": "a"}), "created"),
    (Command(CommandKind.REPLACE, "User", "u", resource={"active": False}),
     "replaced with active=false"),
    (Command(CommandKind.DELETE, "User", "u"), "deleted"),
    (patch({"op": "replace", "path": "active", "value": False}), "set active=false"),
    (patch({"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
           {"op": "add", "path": "members", "value": [{"value": "c"}]},
           {"op": "remove", "path": 'members[value eq "d"]'}),
     "added 3 members, removed 1"),
    (patch({"op": "replace", "path": "members", "value": [{"value": "a"}]}), "set members to 1"),
    (patch({"op": "remove", "path": "members"}), "removed all members"),
    (patch({"op": "remove", "path": "title"}), "removed title"),
    (patch({"op": "replace", "path": "displayName", "value": "x" * 100}), "set displayName"),
])
def test_a_command_in_words(command: Command, words: str) -> None:
    assert summarise(command) == words


@dataclass
class RecordingObserver:
    seen: list[tuple[str, str | None, bool]] = field(default_factory=list)

    def observe(self, tenant_id: str, user_agent: str | None, *, refused: bool) -> None:
        self.seen.append((tenant_id, user_agent, refused))


class Authenticate:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.get_header("Authorization"):
            req.context.tenant = TenantRef("t1", "acme")


class Users:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.get_header("X-Full"):
            raise TooManyRequests("full", retry_after=3)
        resp.media = {}


def test_the_middleware_reports_each_tenant_request_and_its_429s() -> None:
    observer = RecordingObserver()
    app = falcon.App(middleware=[TrafficObservationMiddleware(observer), Authenticate()])
    app.add_route("/Users", Users())

    def to_falcon(req: falcon.Request, resp: falcon.Response, error: Exception,
                  params: dict[str, Any]) -> None:
        raise falcon.HTTPTooManyRequests()

    app.add_error_handler(TooManyRequests, to_falcon)
    client = falcon.testing.TestClient(app)
    agent = {"User-Agent": "Okta SCIM Client 1.0.0", "Authorization": "Bearer x"}
    assert client.simulate_post("/Users", headers=agent).status_code == 200
    assert client.simulate_post("/Users", headers={**agent, "X-Full": "1"}).status_code == 429
    client.simulate_post("/Users", headers={"User-Agent": "anonymous"})  # no tenant
    assert observer.seen == [("t1", "Okta SCIM Client 1.0.0", False),
                             ("t1", "Okta SCIM Client 1.0.0", True)]
