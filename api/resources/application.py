"""The application API under `/app/v1/tenants/{tenant}`: sessions, logins, users and their
history, for the application that relies on scimflow's directory.

Authenticated by application keys (`middleware.AppKeyAuthMiddleware`); a key scoped to other
tenants gets 403. Bodies are `application/json`; errors keep the SCIM error body (`status`,
`detail`), as every other failure of the service does. See docs/APPLICATIONS.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import falcon

from scimflow.api.media import read_json
from scimflow.api.middleware import app_grant_of, request_id_of
from scimflow.api.services import ApplicationApi
from scimflow.pipeline.errors import Forbidden, InvalidValue
from scimflow.pipeline.scim.meta import scim_datetime
from scimflow.pipeline.services.app_sessions import SessionStatus
from scimflow.pipeline.services.app_users import REFERENCES, AppUser, UserHistory
from scimflow.pipeline.services.logins import LoginResult, identity_from
from scimflow.pipeline.store.tenants import TenantRef

APP_PREFIX = "/app/v1"
TENANT_PREFIX = APP_PREFIX + "/tenants/{tenant}"


class _AppEndpoint:
    def __init__(self, app: ApplicationApi, max_body_bytes: int) -> None:
        self._app = app
        self._max_body_bytes = max_body_bytes

    def _tenant(self, req: falcon.Request, name_or_id: str) -> TenantRef:
        """The tenant in the path, if the key may act for it (404 unknown, 403 not granted)."""
        grant = app_grant_of(req)
        tenant = self._app.tenants.find(name_or_id)
        if not grant.allows(tenant.id):
            raise Forbidden("This application key is not granted this tenant.")
        return tenant

    def _body(self, req: falcon.Request) -> dict[str, Any]:
        body = read_json(req, self._max_body_bytes)
        if not isinstance(body, dict):
            raise InvalidValue("The request body is a JSON object.")
        return body


def _send(resp: falcon.Response, body: object, status: str = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.media = body


class SessionsEndpoint(_AppEndpoint):
    def on_post(self, req: falcon.Request, resp: falcon.Response, tenant: str) -> None:
        """Register a session: `{"user": {"id" | "externalId" | "userName": …}, "id"?: …}`."""
        ref = self._tenant(req, tenant)
        body = self._body(req)
        user = body.get("user")
        if not isinstance(user, dict):
            raise InvalidValue("Name the session's user: {\"user\": {\"userName\": \"…\"}}.")
        session_id = body.get("id")
        if session_id is not None and not isinstance(session_id, str):
            raise InvalidValue("A session id is a string.")
        _send(resp, session_json(self._app.sessions.register(ref, user, session_id)),
              falcon.HTTP_201)

    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, tenant: str, session_id: str
    ) -> None:
        _send(resp, session_json(self._app.sessions.check(self._tenant(req, tenant),
                                                           session_id)))

    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, tenant: str, session_id: str
    ) -> None:
        revoked = self._app.sessions.revoke(self._tenant(req, tenant), session_id,
                                            request_id=request_id_of(req))
        _send(resp, session_json(revoked))


class UsersEndpoint(_AppEndpoint):
    def on_get(self, req: falcon.Request, resp: falcon.Response, tenant: str) -> None:
        """Look a user up: `?userName=…` or `?externalId=…` (or `?id=…`)."""
        ref = self._tenant(req, tenant)
        reference = {name: req.get_param(name) for name in REFERENCES if req.get_param(name)}
        _send(resp, user_json(self._app.users.get(ref, reference)))

    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, tenant: str, user_id: str
    ) -> None:
        _send(resp, user_json(self._app.users.get(self._tenant(req, tenant), {"id": user_id})))

    def on_get_sessions(
        self, req: falcon.Request, resp: falcon.Response, tenant: str, user_id: str
    ) -> None:
        found = self._app.sessions.of_user(self._tenant(req, tenant), {"id": user_id})
        _send(resp, {"sessions": sessions_json(found)})

    def on_delete_sessions(
        self, req: falcon.Request, resp: falcon.Response, tenant: str, user_id: str
    ) -> None:
        """Revoke every session of the user."""
        found = self._app.sessions.revoke_all(self._tenant(req, tenant), {"id": user_id},
                                              request_id=request_id_of(req))
        _send(resp, {"sessions": sessions_json(found)})

    def on_get_history(
        self, req: falcon.Request, resp: falcon.Response, tenant: str, user_id: str
    ) -> None:
        _send(resp, history_json(self._app.users.history(self._tenant(req, tenant), user_id)))


class LoginsEndpoint(_AppEndpoint):
    def on_post(self, req: falcon.Request, resp: falcon.Response, tenant: str) -> None:
        """Decide a login (`identity_from` reads the body); allowed or denied, 200."""
        ref = self._tenant(req, tenant)
        identity = identity_from(self._body(req))
        result = self._app.logins.login(ref, identity, request_id=request_id_of(req))
        _send(resp, login_json(result))


def add_application_routes(app: falcon.App[Any, Any], api: ApplicationApi,
                           max_body_bytes: int) -> None:
    sessions = SessionsEndpoint(api, max_body_bytes)
    users = UsersEndpoint(api, max_body_bytes)
    app.add_route(TENANT_PREFIX + "/sessions", sessions)
    app.add_route(TENANT_PREFIX + "/sessions/{session_id}", sessions, suffix="item")
    app.add_route(TENANT_PREFIX + "/users", users)
    app.add_route(TENANT_PREFIX + "/users/{user_id}", users, suffix="item")
    app.add_route(TENANT_PREFIX + "/users/{user_id}/sessions", users, suffix="sessions")
    app.add_route(TENANT_PREFIX + "/users/{user_id}/history", users, suffix="history")
    app.add_route(TENANT_PREFIX + "/logins", LoginsEndpoint(api, max_body_bytes))


def user_json(user: AppUser) -> dict[str, Any]:
    return {"id": user.id, "userName": user.user_name, "externalId": user.external_id,
            "active": user.active, "roles": list(user.roles), "source": user.source}


def session_json(status: SessionStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "status": status.status,
        "reason": status.reason,
        "revoked_at": scim_datetime(status.revoked_at) if status.revoked_at else None,
        "created_at": scim_datetime(status.created_at),
        "user_id": status.user_id,
        "user": user_json(status.user) if status.user else None,
    }


def sessions_json(found: Iterable[SessionStatus]) -> list[dict[str, Any]]:
    return [session_json(status) for status in found]


def login_json(result: LoginResult) -> dict[str, Any]:
    decision = result.decision
    return {
        "decision": "allow" if decision.allow else "deny",
        "reason": decision.reason.value,
        "action": decision.action.value,
        "policy": result.policy.mode.value,
        "user": user_json(result.user) if result.user else None,
    }


def history_json(history: UserHistory) -> dict[str, Any]:
    return {
        "user": user_json(history.user) if history.user else None,
        "commands": [
            {"seq": entry.seq, "operation": entry.kind, "status": entry.status,
             "attempts": entry.attempts, "request_id": entry.request_id or None,
             "acknowledged_at": scim_datetime(entry.acknowledged_at),
             "applied_at": scim_datetime(entry.applied_at) if entry.applied_at else None,
             "error": entry.last_error}
            for entry in history.commands
        ],
        "logins": [
            {"at": scim_datetime(d.at), "issuer": d.issuer, "subject": d.subject,
             "policy": d.policy, "decision": d.decision, "reason": d.reason,
             "action": d.action, "request_id": d.request_id or None}
            for d in history.logins
        ],
    }
