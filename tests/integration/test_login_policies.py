"""The login decision table of docs/APPLICATIONS.md ("Login decisions"), run row by row over
the real HTTP API, on SQLite and PostgreSQL: the table is the test.

Each row's "user before the login" is built with the requests that make it in production (SCIM
writes from the IdP, earlier logins from the application), then the row's policy is set and one
login is sent. Its answer must be the row's decision, reason and action, the user's history must
record it, and the user's attributes must show what the login was allowed to write.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from scimflow.pipeline.login_rules import Mode
from scimflow.pipeline.services.login_policies import LoginPolicies
from tests.support.app_stack import (
    PATCH_SCHEMA,
    USER_SCHEMA,
    AppStack,
    ScimAnswer,
    request,
    running_app_stack,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "APPLICATIONS.md"
TABLE_HEADING = "## Login decisions"
COLUMNS = ("Policy", "User before the login", "Login brings", "Decision", "Reason", "Action")
ISSUER = "https://idp.example.com"
NO_SYNC_SUFFIX = " (no attribute sync)"
GIVEN_NAME = "Ada"
NEW_GIVEN_NAME = "Adeline"
FAMILY_NAME = "Lovelace"
# The policy the setup's own logins run under: it allows a login to link or create a user.
SETUP_MODE = Mode.JIT_THEN_SCIM.value


# --- The table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    policy: str
    before: str
    brings: str
    decision: str
    reason: str
    action: str

    @property
    def mode(self) -> str:
        return self.policy.removesuffix(NO_SYNC_SUFFIX)

    @property
    def sync_attributes(self) -> bool:
        return not self.policy.endswith(NO_SYNC_SUFFIX)

    @property
    def id(self) -> str:
        policy = self.mode + ("-no-sync" if not self.sync_attributes else "")
        return "/".join(_slug(part) for part in (policy, self.before, self.brings))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def decision_rows(markdown: str) -> list[Row]:
    """The rows of the first table under the "Login decisions" heading, backticks removed."""
    lines = markdown.splitlines()
    start = lines.index(TABLE_HEADING)
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table:  # the first line after the table ends it
            break
    header, _separator, *body = (_cells(line) for line in table)
    assert tuple(header) == COLUMNS, header
    return [Row(*cells) for cells in body]


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]


ROWS = decision_rows(DOC.read_text("utf-8"))


def test_the_table_is_read_and_covers_every_policy() -> None:
    assert ROWS
    assert {row.mode for row in ROWS} == {mode.value for mode in Mode}
    assert all(row.brings in {"same attributes", "new name"} for row in ROWS)


@pytest.mark.parametrize("mode", [mode.value for mode in Mode])
def test_the_table_denies_deprovisioned_and_deleted_users_under_every_policy(mode: str) -> None:
    outcomes = {(row.before, row.decision, row.reason) for row in ROWS if row.mode == mode}
    assert ("scim, inactive", "deny", "deprovisioned") in outcomes
    assert ("deleted", "deny", "deleted") in outcomes


# --- A tenant driven over HTTP -----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Who the IdP provisions and who logs in: the login's subject is SCIM's externalId."""

    subject: str
    email: str

    @classmethod
    def new(cls) -> Person:
        token = uuid.uuid4().hex[:12]
        return cls(subject=f"00u{token}", email=f"ada.{token}@example.com")

    def login_body(self, given_name: str) -> dict[str, Any]:
        return {"issuer": ISSUER, "subject": self.subject, "email": self.email,
                "email_verified": True, "user_name": self.email, "given_name": given_name,
                "family_name": FAMILY_NAME}

    def scim_body(self) -> dict[str, Any]:
        """The same attributes a login with GIVEN_NAME brings, in SCIM's form."""
        return {"schemas": [USER_SCHEMA], "userName": self.email, "externalId": self.subject,
                "name": {"givenName": GIVEN_NAME, "familyName": FAMILY_NAME},
                "emails": [{"value": self.email, "type": "work", "primary": True}],
                "active": True}


@dataclass
class Tenant:
    stack: AppStack
    name: str
    scim_token: str
    app_key: str

    def app(self, method: str, path: str, body: Any = None) -> ScimAnswer:
        url = f"{self.stack.url}/app/v1/tenants/{self.name}{path}"
        return request(url, method, self.app_key, body, "application/json")

    def scim(self, method: str, path: str, body: Any = None) -> ScimAnswer:
        return self.stack.scim(self.scim_token, method, path, body)

    def set_policy(self, mode: str, *, sync_attributes: bool = True) -> None:
        LoginPolicies(self.stack.sessions).update(self.name, mode=mode, issuers=[ISSUER],
                                                  sync_attributes=sync_attributes)

    def login(self, person: Person, given_name: str = GIVEN_NAME) -> dict[str, Any]:
        answer = self.app("POST", "/logins", person.login_body(given_name))
        assert answer.status == 200, answer
        return dict(answer.body)

    def provision(self, person: Person) -> str:
        created = self.scim("POST", "/Users", person.scim_body())
        assert created.status == 201, created
        self.stack.drain()
        return str(created.body["id"])

    def history(self, user_id: str) -> dict[str, Any]:
        answer = self.app("GET", f"/users/{user_id}/history")
        assert answer.status == 200, answer
        return dict(answer.body)

    def logins_of(self, user_id: str) -> list[dict[str, Any]]:
        return list(self.history(user_id)["logins"])


@pytest.fixture
def stack(db_engine: Engine, database_url: str) -> Iterator[AppStack]:
    with running_app_stack(database_url) as running:
        yield running


@pytest.fixture
def tenant(stack: AppStack) -> Tenant:
    ref, token = stack.tenant("acme")
    return Tenant(stack, ref.name, token, stack.app_key(ref.id))


# --- The users before the login ----------------------------------------------------------------


def _nobody(tenant: Tenant, person: Person) -> str | None:
    return None


def _scim_user(tenant: Tenant, person: Person) -> str | None:
    return tenant.provision(person)


def _scim_user_linked(tenant: Tenant, person: Person) -> str | None:
    user_id = tenant.provision(person)
    tenant.set_policy(SETUP_MODE)
    earlier = tenant.login(person)
    assert (earlier["decision"], earlier["action"]) == ("allow", "linked"), earlier
    return user_id


def _scim_user_inactive(tenant: Tenant, person: Person) -> str | None:
    user_id = tenant.provision(person)
    body = {"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": False}]}
    patched = tenant.scim("PATCH", f"/Users/{user_id}", body)
    assert patched.status == 200 and patched.body["active"] is False, patched
    tenant.stack.drain()
    return user_id


def _jit_user(tenant: Tenant, person: Person) -> str | None:
    tenant.set_policy(SETUP_MODE)
    earlier = tenant.login(person)
    assert (earlier["decision"], earlier["action"]) == ("allow", "created"), earlier
    assert earlier["user"]["source"] == "jit"
    return str(earlier["user"]["id"])


def _deleted_user(tenant: Tenant, person: Person) -> str | None:
    """SCIM's user, whose identity a login linked, deleted by SCIM since."""
    user_id = _scim_user_linked(tenant, person)
    deleted = tenant.scim("DELETE", f"/Users/{user_id}")
    assert deleted.status == 204, deleted
    tenant.stack.drain()
    return user_id


USER_BEFORE: dict[str, Callable[[Tenant, Person], str | None]] = {
    "none": _nobody,
    "scim": _scim_user,
    "scim, linked": _scim_user_linked,
    "scim, inactive": _scim_user_inactive,
    "jit": _jit_user,
    "deleted": _deleted_user,
}


# --- Every row ---------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_login_decision(tenant: Tenant, row: Row) -> None:
    person = Person.new()
    user_before = USER_BEFORE[row.before](tenant, person)
    earlier_logins = len(tenant.logins_of(user_before)) if user_before else 0
    tenant.set_policy(row.mode, sync_attributes=row.sync_attributes)

    given_name = NEW_GIVEN_NAME if row.brings == "new name" else GIVEN_NAME
    answer = tenant.login(person, given_name)

    assert (answer["decision"], answer["reason"], answer["action"]) == (
        row.decision, row.reason, row.action), answer
    assert answer["policy"] == row.mode
    user_id = _user_of_login(answer, user_before, row)
    if user_id is None:
        # Denied with nobody to lead to: the login wrote no user.
        assert tenant.app("GET", f"/users?externalId={person.subject}").status == 404
        return
    _check_recorded(tenant, person, user_id, row, earlier_logins)
    if row.before != "deleted":
        _check_attributes(tenant, person, user_id, row, given_name)
    _check_applied(tenant, user_id)


def _user_of_login(answer: dict[str, Any], user_before: str | None, row: Row) -> str | None:
    """The user the login led to: the one it created, else the one there before."""
    if row.action == "created":
        assert user_before is None
        assert answer["user"]["source"] == "jit"
        return str(answer["user"]["id"])
    if row.decision == "allow":
        assert answer["user"]["id"] == user_before, answer
    return user_before


def _check_recorded(
    tenant: Tenant, person: Person, user_id: str, row: Row, earlier_logins: int
) -> None:
    """The decision is the newest entry of the user's login history."""
    logins = tenant.logins_of(user_id)
    assert len(logins) == earlier_logins + 1, logins
    latest = logins[-1]
    assert {key: latest[key] for key in ("issuer", "subject", "policy", "decision", "reason",
                                         "action")} == {
        "issuer": ISSUER, "subject": person.subject, "policy": row.mode,
        "decision": row.decision, "reason": row.reason, "action": row.action}


def _check_attributes(
    tenant: Tenant, person: Person, user_id: str, row: Row, given_name: str
) -> None:
    """A login that created or updated the user wrote its name; any other left it alone."""
    user = tenant.scim("GET", f"/Users/{user_id}")
    assert user.status == 200, user
    written = row.action in {"created", "updated"}
    assert user.body["name"]["givenName"] == (given_name if written else GIVEN_NAME)
    assert user.body["name"]["familyName"] == FAMILY_NAME
    if row.action == "created":
        assert user.body["userName"] == person.email
        assert user.body["externalId"] == person.subject
        assert [email["value"] for email in user.body["emails"]] == [person.email]
        assert user.body["active"] is True


def _check_applied(tenant: Tenant, user_id: str) -> None:
    """What the login wrote is a command the workers apply like SCIM's own."""
    tenant.stack.drain()
    commands = tenant.history(user_id)["commands"]
    assert commands, "the user's SCIM or login writes are journaled"
    assert {command["status"] for command in commands} == {"applied"}, commands
