"""A small client of the application API (`/app/v1`, docs/APPLICATIONS.md), for a Python
application that relies on scimflow's directory: decide logins, register and check sessions,
look users up. Standard library only, so an application can vendor this one file.

Each call opens its own connection (`urllib.request`) and the client holds no other state, so
one `AppClient` may be shared by every thread of the application::

    from scimflow.client import AppApiError, AppClient

    client = AppClient("https://scim.example.com", "sfk_…")
    login = client.login("acme", issuer="https://acme.okta.com", subject="00u1abc",
                         email="alice@acme.com", email_verified=True, groups=["Engineering"])
    if login["decision"] == "allow":
        session = client.register_session("acme", user_id=login["user"]["id"])
        ...
    # On each request of the application:
    if not client.is_active("acme", session["id"]):
        ...  # sign the user out

A refusal of the service (any 4xx or 5xx) raises `AppApiError` with its HTTP status and the
error body's `detail`; a network failure raises `OSError` (`urllib.error.URLError`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

__all__ = ["AppApiError", "AppClient"]

API_PREFIX = "/app/v1/tenants/"
NOT_FOUND = 404


class AppApiError(Exception):
    """The service refused a request: `status` is the HTTP status, `detail` says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class AppClient:
    def __init__(self, base_url: str, key: str, *, timeout: float = 5.0) -> None:
        """`base_url` is where the service answers (what precedes `/app/v1`); `key` is an
        application key (`scimflow app-key create`)."""
        self._base_url = base_url.rstrip("/")
        self._key = key
        self._timeout = timeout

    # --- Logins --------------------------------------------------------------------------

    def login(
        self,
        tenant: str,
        *,
        issuer: str,
        subject: str,
        email: str | None = None,
        email_verified: bool = False,
        user_name: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        name: str | None = None,
        groups: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Decide a login of a verified identity: `{"decision", "reason", "action", "policy",
        "user"}`. A denial is an answer (`decision: "deny"`), not an error."""
        claims = {"email": email, "user_name": user_name, "given_name": given_name,
                  "family_name": family_name, "name": name}
        body: dict[str, Any] = {"issuer": issuer, "subject": subject,
                                "email_verified": email_verified, "groups": list(groups)}
        body.update({claim: value for claim, value in claims.items() if value is not None})
        return self._object("POST", self._path(tenant, "logins"), body)

    # --- Sessions ------------------------------------------------------------------------

    def register_session(
        self,
        tenant: str,
        *,
        user_id: str | None = None,
        external_id: str | None = None,
        user_name: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """A new session of the user named by exactly one of `user_id`, `external_id` or
        `user_name`; `session_id` is the application's own id (else the service makes one)."""
        body: dict[str, Any] = {"user": _reference(user_id, external_id, user_name)}
        if session_id is not None:
            body["id"] = session_id
        return self._object("POST", self._path(tenant, "sessions"), body)

    def check_session(self, tenant: str, session_id: str) -> dict[str, Any]:
        """The session: `status` is "active" or "revoked" (then `reason` says why)."""
        return self._object("GET", self._path(tenant, "sessions", session_id))

    def is_active(self, tenant: str, session_id: str) -> bool:
        """Whether the session is active; False too when the service knows no such session."""
        try:
            return bool(self.check_session(tenant, session_id)["status"] == "active")
        except AppApiError as error:
            if error.status == NOT_FOUND:
                return False
            raise

    def revoke_session(self, tenant: str, session_id: str) -> dict[str, Any]:
        """Revoke one session (reason "application"); revoking it again changes nothing."""
        return self._object("DELETE", self._path(tenant, "sessions", session_id))

    def sessions_of(self, tenant: str, user_id: str) -> list[dict[str, Any]]:
        """Every session of the user, active or revoked."""
        return self._sessions("GET", self._path(tenant, "users", user_id, "sessions"))

    def revoke_sessions(self, tenant: str, user_id: str) -> list[dict[str, Any]]:
        """Revoke every session of the user; returns them all as they are now."""
        return self._sessions("DELETE", self._path(tenant, "users", user_id, "sessions"))

    # --- Users ---------------------------------------------------------------------------

    def user(
        self,
        tenant: str,
        *,
        user_id: str | None = None,
        external_id: str | None = None,
        user_name: str | None = None,
    ) -> dict[str, Any]:
        """The user named by exactly one of `user_id`, `external_id` or `user_name`, as
        acknowledged (`id`, `userName`, `externalId`, `active`, `roles`, `source`)."""
        query = urllib.parse.urlencode(_reference(user_id, external_id, user_name))
        return self._object("GET", self._path(tenant, "users") + "?" + query)

    def history(self, tenant: str, user_id: str) -> dict[str, Any]:
        """The user's SCIM commands and login decisions: `{"user", "commands", "logins"}`."""
        return self._object("GET", self._path(tenant, "users", user_id, "history"))

    # --- HTTP ----------------------------------------------------------------------------

    def _path(self, tenant: str, *segments: str) -> str:
        # Every segment quoted whole: an id holding "/", "?" or "#" stays one segment.
        quoted = (urllib.parse.quote(segment, safe="") for segment in (tenant, *segments))
        return API_PREFIX + "/".join(quoted)

    def _object(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        answer = self._call(method, path, body)
        if not isinstance(answer, dict):
            raise AppApiError(502, f"Expected a JSON object from {method} {path}.")
        return answer

    def _sessions(self, method: str, path: str) -> list[dict[str, Any]]:
        sessions = self._object(method, path).get("sessions")
        if not isinstance(sessions, list):
            raise AppApiError(502, f"Expected a list of sessions from {method} {path}.")
        return sessions

    def _call(self, method: str, path: str, body: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self._base_url + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return _json(response.read())
        except urllib.error.HTTPError as error:
            with error:
                raise AppApiError(error.code, _detail(error.read(), error.reason)) from None


def _reference(
    user_id: str | None, external_id: str | None, user_name: str | None
) -> dict[str, str]:
    """The user reference the service reads; it refuses anything but exactly one name (400)."""
    named = {"id": user_id, "externalId": external_id, "userName": user_name}
    return {kind: value for kind, value in named.items() if value is not None}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise AppApiError(502, "The service answered with a body that is not JSON.") from None


def _detail(raw: bytes, reason: object) -> str:
    """The error body's `detail`, or what the response says when it holds none (a proxy's
    HTML page, an empty body)."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return raw.decode("utf-8", "replace").strip()[:200] or str(reason)
