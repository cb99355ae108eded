"""The login decision rules, without a database (the HTTP table test runs them end to end)."""

from __future__ import annotations

import pytest

from scimflow.pipeline.login_rules import (
    Action,
    KnownUser,
    LoginIdentity,
    LoginPolicy,
    Mode,
    Reason,
    UntrustedIssuer,
    check_issuer,
    decide,
    provisional_user,
    updated_user,
)

ISSUER = "https://idp.example.test"


def _user(*, scim: bool = True, active: bool = True, linked: bool = False) -> KnownUser:
    return KnownUser("u1", scim_owned=scim, active=active, linked=linked)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_deprovisioned_user_is_denied_under_every_policy(mode: Mode) -> None:
    decision = decide(LoginPolicy(mode), _user(active=False), deleted=False,
                      attributes_differ=True)
    assert (decision.allow, decision.reason, decision.action) == (
        False, Reason.DEPROVISIONED, Action.NONE)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_deleted_user_is_never_created_again(mode: Mode) -> None:
    decision = decide(LoginPolicy(mode), None, deleted=True, attributes_differ=False)
    assert (decision.allow, decision.reason) == (False, Reason.DELETED)


def test_scim_authoritative_never_creates_nor_writes() -> None:
    policy = LoginPolicy(Mode.SCIM_AUTHORITATIVE)
    assert decide(policy, None, deleted=False, attributes_differ=False).reason is (
        Reason.NOT_PROVISIONED)
    assert decide(policy, _user(scim=False), deleted=False,
                  attributes_differ=False).reason is Reason.NOT_PROVISIONED
    allowed = decide(policy, _user(), deleted=False, attributes_differ=True)
    assert (allowed.allow, allowed.action) == (True, Action.LINKED)


def test_jit_then_scim_updates_only_users_scim_does_not_own() -> None:
    policy = LoginPolicy(Mode.JIT_THEN_SCIM)
    assert decide(policy, None, deleted=False, attributes_differ=False).action is Action.CREATED
    jit = decide(policy, _user(scim=False, linked=True), deleted=False, attributes_differ=True)
    assert jit.action is Action.UPDATED
    owned = decide(policy, _user(linked=True), deleted=False, attributes_differ=True)
    assert owned.action is Action.NONE


def test_jit_only_updates_unless_attribute_sync_is_off() -> None:
    on = LoginPolicy(Mode.JIT_ONLY)
    off = LoginPolicy(Mode.JIT_ONLY, sync_attributes=False)
    user = _user(linked=True)
    assert decide(on, user, deleted=False, attributes_differ=True).action is Action.UPDATED
    assert decide(off, user, deleted=False, attributes_differ=True).action is Action.NONE


def test_only_named_issuers_are_trusted() -> None:
    policy = LoginPolicy(issuers=(ISSUER,))
    check_issuer(policy, ISSUER)
    with pytest.raises(UntrustedIssuer) as refused:
        check_issuer(policy, "https://attacker.example")
    assert refused.value.status == 403
    with pytest.raises(UntrustedIssuer):
        check_issuer(LoginPolicy(), ISSUER)


def test_a_provisional_user_is_keyed_by_the_subject() -> None:
    identity = LoginIdentity(ISSUER, "00u1abc", email="ada@example.test", email_verified=True,
                             given_name="Ada", family_name="Lovelace")
    user = provisional_user(identity)
    assert (user["externalId"], user["userName"]) == ("00u1abc", "00u1abc")
    assert user["emails"] == [{"value": "ada@example.test", "type": "work", "primary": True}]
    named = provisional_user(LoginIdentity(ISSUER, "00u1abc", user_name="ada@example.test"))
    assert named["userName"] == "ada@example.test"


def test_an_update_keeps_the_keys_and_other_attributes() -> None:
    current = {"userName": "ada", "externalId": "x1", "title": "Countess",
               "name": {"givenName": "Ada"}}
    updated = updated_user(current, LoginIdentity(ISSUER, "x1", given_name="Augusta"))
    assert updated == {**current, "name": {"givenName": "Augusta"}}
