"""SCIM claiming the users JIT logins created, with the requests Okta and Entra really send
(tests/samples/idp, tests/system/idp.py), over the real HTTP API on SQLite and PostgreSQL; and
a login racing a SCIM POST for the same person, which must never make two users.

Okta assigns a user with an existence check `GET /Users?filter=userName eq "…"` and, when it
finds one, links to it and pushes the profile as GET-modify-PUT; without a match it POSTs.
Entra matches with a filter too (spaces sent as `+`) and updates with capitalised PATCH ops.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import Engine, func, select

from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.services.login_policies import LoginPolicies
from scimflow.pipeline.services.role_mappings import RoleMappings
from scimflow.pipeline.store.models import AcknowledgedRow, User
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import read_sample
from tests.support.app_stack import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    AppStack,
    ScimAnswer,
    request,
    running_app_stack,
)

ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OKTA_ISSUER = "https://acme.okta.com"
ENTRA_ISSUER = "https://login.microsoftonline.com/7f3c0f5e-0000-4000-8000-000000000001/v2.0"
JIT_THEN_SCIM = "jit-then-scim"


# --- A tenant driven over HTTP -----------------------------------------------------------------


@dataclass
class Tenant:
    stack: AppStack
    ref: TenantRef
    scim_token: str
    app_key: str
    # Every SCIM answer this tenant got, to show no step was refused along the way.
    scim_statuses: list[int] = field(default_factory=list)

    def app(self, method: str, path: str, body: Any = None) -> ScimAnswer:
        url = f"{self.stack.url}/app/v1/tenants/{self.ref.name}{path}"
        return request(url, method, self.app_key, body, "application/json")

    def scim(self, method: str, path: str, body: Any = None) -> ScimAnswer:
        answer = self.stack.scim(self.scim_token, method, path, body)
        self.scim_statuses.append(answer.status)
        return answer

    def login(self, issuer: str, subject: str, **claims: Any) -> dict[str, Any]:
        answer = self.app("POST", "/logins", {"issuer": issuer, "subject": subject, **claims})
        assert answer.status == 200, answer
        return dict(answer.body)

    def app_user(self, user_id: str) -> dict[str, Any]:
        answer = self.app("GET", f"/users/{user_id}")
        assert answer.status == 200, answer
        return dict(answer.body)

    def user_ids(self) -> tuple[list[str], list[str]]:
        """The ids of the tenant's users: applied (`users`), and acknowledged (`resources`)."""
        with self.stack.sessions() as session:
            applied = session.scalars(select(User.id).where(User.tenant_id == self.ref.id))
            acknowledged = session.scalars(select(AcknowledgedRow.id).where(
                AcknowledgedRow.tenant_id == self.ref.id,
                AcknowledgedRow.resource_type == "User"))
            return sorted(applied), sorted(acknowledged)


@pytest.fixture
def stack(db_engine: Engine, database_url: str) -> Iterator[AppStack]:
    with running_app_stack(database_url) as running:
        yield running


@pytest.fixture
def tenant(stack: AppStack) -> Tenant:
    ref, token = stack.tenant("acme")
    LoginPolicies(stack.sessions).update(ref.id, mode=JIT_THEN_SCIM,
                                         issuers=[OKTA_ISSUER, ENTRA_ISSUER])
    return Tenant(stack, ref, token, stack.app_key(ref.id))


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def okta_lookup(user_name: str) -> str:
    """Okta's existence check (O1): `%20`-encoded, with its paging parameters."""
    query = quote(f'userName eq "{user_name}"', safe="")
    return f"/Users?filter={query}&startIndex=1&count=100"


def entra_lookup(user_name: str) -> str:
    """Entra's matching query (E1, E8): spaces sent as `+`."""
    query = quote_plus(f'userName eq "{user_name}"')
    return f"/Users?filter={query}"


def okta_create_body(user_name: str, given_name: str) -> dict[str, Any]:
    """Okta's create request (tests/samples/idp/okta/okta-create-user.json) for this person."""
    body: dict[str, Any] = read_sample("idp/okta/okta-create-user.json")
    body["userName"] = user_name
    body["name"] = {"givenName": given_name, "familyName": "Okta"}
    body["displayName"] = f"{given_name} Okta"
    body["emails"][0]["value"] = user_name
    body["externalId"] = f"00u{uuid.uuid4().hex[:17]}"
    return body


def jit_login(tenant: Tenant, issuer: str, subject: str, **claims: Any) -> str:
    """A first login, under jit-then-scim: it creates the user; its id."""
    answer = tenant.login(issuer, subject, email=subject, email_verified=True, **claims)
    assert (answer["decision"], answer["action"]) == ("allow", "created"), answer
    assert answer["user"]["source"] == "jit"
    return str(answer["user"]["id"])


def assert_one_user(tenant: Tenant, user_id: str) -> None:
    """Once the workers applied everything, the person is one user, applied and acknowledged."""
    tenant.stack.drain()
    assert tenant.user_ids() == ([user_id], [user_id])


def assert_later_login_finds(tenant: Tenant, issuer: str, subject: str, user_id: str) -> None:
    later = tenant.login(issuer, subject, email=subject, email_verified=True)
    assert (later["decision"], later["reason"]) == ("allow", "allowed"), later
    assert later["user"]["id"] == user_id
    assert later["user"]["source"] == "scim"


# --- Okta ------------------------------------------------------------------------------------


def test_okta_finds_the_jit_user_by_user_name_and_claims_it_with_its_put(tenant: Tenant) -> None:
    email = f"{unique('alice')}@acme.com"  # the login's subject is Okta's userName
    user_id = jit_login(tenant, OKTA_ISSUER, email, given_name="Alice")

    found = tenant.scim("GET", okta_lookup(email))
    assert found.status == 200
    assert found.body["totalResults"] == 1
    assert [user["id"] for user in found.body["Resources"]] == [user_id]

    # Okta links to the match and pushes its profile: GET, change the mapped attributes, PUT.
    current = tenant.scim("GET", f"/Users/{user_id}").body
    current["name"] = {"givenName": "Alice", "middleName": "Okta", "familyName": "Smith"}
    current["displayName"] = "Alice Smith"
    current.setdefault("groups", [])
    replaced = tenant.scim("PUT", f"/Users/{user_id}", current)
    assert replaced.status == 200, replaced
    assert replaced.body["id"] == user_id
    assert replaced.body["name"]["familyName"] == "Smith"

    assert tenant.app_user(user_id)["source"] == "scim"
    assert tenant.scim("GET", okta_lookup(email)).body["totalResults"] == 1
    assert 409 not in tenant.scim_statuses, tenant.scim_statuses
    assert_later_login_finds(tenant, OKTA_ISSUER, email, user_id)
    assert_one_user(tenant, user_id)


def test_okta_post_of_the_jit_users_user_name_claims_it(tenant: Tenant) -> None:
    email = f"{unique('bob')}@acme.com"
    user_id = jit_login(tenant, OKTA_ISSUER, email, given_name="Bob")

    created = tenant.scim("POST", "/Users", okta_create_body(email, "Robert"))
    assert created.status == 201, created
    assert created.body["id"] == user_id
    assert tenant.app_user(user_id)["source"] == "scim"

    # SCIM owns the user now: a login bringing another name writes nothing.
    later = tenant.login(OKTA_ISSUER, email, email=email, email_verified=True, given_name="Bobby")
    assert (later["decision"], later["action"]) == ("allow", "none"), later
    assert later["user"]["id"] == user_id
    assert tenant.scim("GET", f"/Users/{user_id}").body["name"]["givenName"] == "Robert"
    assert_later_login_finds(tenant, OKTA_ISSUER, email, user_id)
    assert_one_user(tenant, user_id)
    assert tenant.scim("GET", f"/Users/{user_id}").body["name"]["givenName"] == "Robert"


def test_okta_retrying_its_claiming_post_gets_the_same_user(tenant: Tenant) -> None:
    email = f"{unique('cy')}@acme.com"
    user_id = jit_login(tenant, OKTA_ISSUER, email, given_name="Cy")
    body = okta_create_body(email, "Cyrus")

    first, retried = tenant.scim("POST", "/Users", body), tenant.scim("POST", "/Users", body)

    assert (first.status, retried.status) == (201, 201), (first, retried)
    assert first.body["id"] == retried.body["id"] == user_id


def test_a_login_whose_user_name_another_user_holds_is_denied_as_a_conflict(
    tenant: Tenant,
) -> None:
    email = f"{unique('dee')}@acme.com"
    held = tenant.scim("POST", "/Users", okta_create_body(email, "Dee"))
    assert held.status == 201, held

    # Neither the subject nor a verified email leads to that user; the user name is its.
    answer = tenant.login(OKTA_ISSUER, unique("oid"), user_name=email)

    assert (answer["decision"], answer["reason"], answer["user"]) == ("deny", "conflict", None)
    assert tenant.user_ids()[1] == [held.body["id"]]


def test_scim_claiming_by_a_user_name_the_login_chose_does_not_hand_it_that_user(
    tenant: Tenant,
) -> None:
    """A login may name itself (`user_name`) as anyone; only its subject is the shared key.
    SCIM claiming the user by that name unlinks the login, whose next attempt is refused."""
    ceo = f"{unique('ceo')}@acme.com"
    mallory = tenant.login(OKTA_ISSUER, "m-sub", user_name=ceo)
    assert mallory["action"] == "created", mallory

    claimed = tenant.scim("POST", "/Users", okta_create_body(ceo, "Cee"))
    assert claimed.status == 201, claimed

    again = tenant.login(OKTA_ISSUER, "m-sub", user_name=ceo)
    assert (again["decision"], again["reason"]) == ("deny", "conflict"), again
    ceo_login = tenant.login(OKTA_ISSUER, claimed.body["externalId"])
    assert (ceo_login["decision"], ceo_login["user"]["id"]) == ("allow", claimed.body["id"])


# --- Entra -----------------------------------------------------------------------------------


def test_entra_matches_the_jit_user_by_upn_and_claims_it_with_its_patch(tenant: Tenant) -> None:
    nickname = unique("carol")
    upn = f"{nickname}@contoso.onmicrosoft.com"  # the ID token's subject here is the UPN
    user_id = jit_login(tenant, ENTRA_ISSUER, upn, given_name="Carol")

    found = tenant.scim("GET", entra_lookup(upn))
    assert found.status == 200
    assert [user["id"] for user in found.body["Resources"]] == [user_id]

    # Only what differs, one capitalised op each (E1, E2; default mode).
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Replace", "path": "displayName", "value": "Carol Jones"},
        {"op": "Replace", "path": "name.familyName", "value": "Jones"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": upn},
        {"op": "Replace", "path": "externalId", "value": nickname},
        {"op": "Add", "path": f"{ENTERPRISE_SCHEMA}:department", "value": "Finance"},
    ]}
    patched = tenant.scim("PATCH", f"/Users/{user_id}", patch)
    assert patched.status == 200, patched
    assert patched.body["id"] == user_id
    assert patched.body["externalId"] == nickname
    assert patched.body[ENTERPRISE_SCHEMA]["department"] == "Finance"

    assert tenant.app_user(user_id)["source"] == "scim"
    assert 409 not in tenant.scim_statuses, tenant.scim_statuses
    # The login's identity stays linked although SCIM changed the externalId.
    assert_later_login_finds(tenant, ENTRA_ISSUER, upn, user_id)
    assert_one_user(tenant, user_id)
    assert tenant.scim("GET", f"/Users/{user_id}").body["name"]["familyName"] == "Jones"


# --- Roles -----------------------------------------------------------------------------------


def test_claimed_user_trades_claim_roles_for_its_scim_groups_roles(tenant: Tenant) -> None:
    mappings = RoleMappings(tenant.stack.sessions)
    mappings.map(tenant.ref.id, "Engineering", "developer")
    mappings.map(tenant.ref.id, "okta-admins", "admin")
    email = f"{unique('dave')}@acme.com"
    user_id = jit_login(tenant, OKTA_ISSUER, email, groups=["Engineering", "okta-admins"])
    assert tenant.app_user(user_id)["roles"] == ["admin", "developer"]

    assert tenant.scim("POST", "/Users", okta_create_body(email, "Dave")).body["id"] == user_id
    assert tenant.app_user(user_id)["roles"] == []

    group = {"schemas": [GROUP_SCHEMA], "displayName": "Engineering",
             "members": [{"value": user_id}]}
    assert tenant.scim("POST", "/Groups", group).status == 201
    tenant.stack.drain()
    assert tenant.app_user(user_id)["roles"] == ["developer"]

    # The group claims of a later login no longer count for a user SCIM owns.
    later = tenant.login(OKTA_ISSUER, email, groups=["Engineering", "okta-admins"])
    assert later["user"]["roles"] == ["developer"]
    assert tenant.app_user(user_id)["roles"] == ["developer"]


# --- A login racing SCIM's POST --------------------------------------------------------------


def together(*calls: Callable[[], ScimAnswer]) -> list[ScimAnswer]:
    """Run the calls on threads of their own, released at once by a barrier."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], ScimAnswer]) -> ScimAnswer:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result() for future in futures]


@pytest.mark.parametrize(
    ("database_url", "rounds"),
    [pytest.param("sqlite", 5, id="sqlite"),
     pytest.param("postgresql", 30, id="postgresql", marks=pytest.mark.postgres)],
    indirect=["database_url"],
)
def test_a_login_and_a_scim_post_for_one_person_make_one_user(
    tenant: Tenant, rounds: int
) -> None:
    for number in range(rounds):
        # Odd rounds: SCIM's externalId is the login's subject and its userName another one.
        user_name = race_round(tenant, number, key_by_external_id=bool(number % 2))
        tenant.stack.drain()
        assert _rows_named(tenant, user_name) == (1, 1), number
        applied, acknowledged = tenant.user_ids()
        assert len(applied) == len(acknowledged) == number + 1


def race_round(tenant: Tenant, number: int, *, key_by_external_id: bool) -> str:
    """A fresh person's login and SCIM POST, sent together; the userName SCIM gave."""
    subject = f"{unique(f'race{number}')}@acme.com"
    body = okta_create_body(subject, "Erin")
    if key_by_external_id:
        body["externalId"] = subject
        body["userName"] = f"{unique('erin')}@acme.com"
    login_body = {"issuer": OKTA_ISSUER, "subject": subject}

    login, created = together(partial(tenant.app, "POST", "/logins", login_body),
                              partial(tenant.scim, "POST", "/Users", body))

    assert login.status == 200 and login.body["decision"] == "allow", (number, login)
    assert created.status == 201, (number, created)
    assert created.body["id"] == login.body["user"]["id"], (number, login, created)
    return str(body["userName"])


def _rows_named(tenant: Tenant, user_name: str) -> tuple[int, int]:
    """How many users hold this userName: applied (`users`), acknowledged (`resources`)."""
    with tenant.stack.sessions() as session:
        applied = session.scalar(select(func.count()).select_from(User).where(
            User.tenant_id == tenant.ref.id, User.user_name == user_name))
        acknowledged = session.scalar(select(func.count()).select_from(AcknowledgedRow).where(
            AcknowledgedRow.tenant_id == tenant.ref.id,
            AcknowledgedRow.user_name_key == fold_key(user_name)))
        return int(applied or 0), int(acknowledged or 0)
