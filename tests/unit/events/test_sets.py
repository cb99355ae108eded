"""Security Event Tokens: RFC 9967's claim structure, verified by PyJWT and by our verifier."""

from __future__ import annotations

import copy
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scimflow.pipeline.events.sets import (
    SET_TYPE,
    SetVerificationError,
    SigningKey,
    event_set,
    generate_signing_key,
    public_jwks,
    verify_set,
)

ISSUER = "https://scim.example.com"
AUDIENCE = "https://app.example.com/scim-events"
ISSUED_AT = 1_796_115_660
# 2026-12-01T09:00:00Z, the events' occurred_at.
OCCURRED_AT = 1_796_115_600
PROV = "urn:ietf:params:scim:event:prov"
USER_ID = "2819c223-7f76-453a-919d-413861904646"
GROUP_ID = "176f397ec4c44b94b2cfcb759780b8c2"


def user_event(event_type: str, **changes: Any) -> dict[str, Any]:
    data = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": USER_ID,
        "userName": "bjensen",
        "externalId": "bjensen-ext",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": event_type != "user.deprovisioned",
    }
    event = {
        "id": "evt_0192f3a4b5c6d7e8f90a1b2c3d4e5f60",
        "type": event_type,
        "schema_version": 1,
        "tenant": "acme",
        "occurred_at": "2026-12-01T09:00:00Z",
        "resource": {"type": "User", "id": USER_ID, "externalId": "bjensen-ext",
                     "userName": "bjensen", "version": 3},
        "data": None if event_type == "user.deleted" else data,
        "request_id": "4f1c2d3e",
    }
    return {**event, **changes}


def group_event(event_type: str, **changes: Any) -> dict[str, Any]:
    event = {
        "id": "evt_0192f3a4b5c6d7e8f90a1b2c3d4e5f61",
        "type": event_type,
        "schema_version": 1,
        "tenant": "acme",
        "occurred_at": "2026-12-01T09:00:00Z",
        "resource": {"type": "Group", "id": GROUP_ID, "externalId": "crmUsers",
                     "displayName": "CRM users", "version": 7},
        "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": GROUP_ID,
                 "displayName": "CRM users"},
        "request_id": None,
    }
    return {**event, **changes}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


def signed_claims(event: dict[str, Any], key: SigningKey, **options: Any) -> dict[str, Any]:
    """Sign, then decode with PyJWT (a verifier we did not write) against our JWKS."""
    token = event_set(event, issuer=ISSUER, audience=options.get("audience", AUDIENCE), key=key,
                      issued_at=ISSUED_AT)
    jwk = jwt.PyJWKSet.from_dict(public_jwks([key]))[key.kid]
    claims: dict[str, Any] = jwt.decode(token, key=jwk.key, algorithms=[jwk.algorithm_name],
                                        audience=AUDIENCE, issuer=ISSUER)
    assert claims == verify_set(token, public_jwks([key]), audience=AUDIENCE)
    return claims


def test_the_header_types_the_token_as_a_set(key: SigningKey) -> None:
    token = event_set(user_event("user.created"), issuer=ISSUER, audience=AUDIENCE, key=key,
                      issued_at=ISSUED_AT)
    header = jwt.get_unverified_header(token)

    assert header == {"typ": "secevent+jwt", "alg": "ES256", "kid": key.kid}


def test_the_jwks_publishes_the_public_half_only(key: SigningKey) -> None:
    [jwk] = public_jwks([key])["keys"]

    assert jwk["use"] == "sig"
    assert jwk["alg"] == "ES256"
    assert jwk["kid"] == key.kid
    assert {"kty", "crv", "x", "y"} <= set(jwk)
    assert "d" not in jwk
    assert jwt.PyJWK(jwk).key is not None


def test_a_created_user_is_a_full_create_event_with_rfc_9967_claims(key: SigningKey) -> None:
    event = user_event("user.created")
    claims = signed_claims(event, key)

    # The shape of RFC 9967 Figure 4: top-level SET claims, sub_id, one full create event.
    assert set(claims) == {"iss", "iat", "jti", "aud", "txn", "toe", "sub_id", "events"}
    assert claims["iss"] == ISSUER
    assert claims["iat"] == ISSUED_AT
    assert claims["jti"] == event["id"]
    assert claims["txn"] == "4f1c2d3e"
    assert claims["toe"] == OCCURRED_AT
    assert claims["sub_id"] == {"format": "scim", "uri": f"/Users/{USER_ID}",
                                "externalId": "bjensen-ext", "userName": "bjensen"}
    assert claims["events"] == {
        f"{PROV}:create:full": {"version": 'W/"3"', "data": event["data"]}
    }


def test_an_update_is_a_full_put_event_without_attributes(key: SigningKey) -> None:
    event = user_event("user.updated", changed_attributes=["name"])
    payload = signed_claims(event, key)["events"][f"{PROV}:put:full"]

    # RFC 9967 §2.4: "data" and "attributes" are never both present.
    assert payload == {"version": 'W/"3"', "data": event["data"]}


def test_deprovisioning_is_a_deactivate_event_with_the_final_state(key: SigningKey) -> None:
    event = user_event("user.deprovisioned", changed_attributes=["active"])
    events = signed_claims(event, key)["events"]

    assert events[f"{PROV}:deactivate"] == {}
    assert events[f"{PROV}:put:full"]["data"]["active"] is False


def test_reactivation_is_an_activate_event_with_the_final_state(key: SigningKey) -> None:
    events = signed_claims(user_event("user.reactivated"), key)["events"]

    assert set(events) == {f"{PROV}:activate", f"{PROV}:put:full"}
    assert events[f"{PROV}:activate"] == {}


@pytest.mark.parametrize("event", [user_event("user.deleted"),
                                   group_event("group.deleted", data=None)])
def test_a_deletion_is_an_empty_delete_event(key: SigningKey, event: dict[str, Any]) -> None:
    claims = signed_claims(event, key)

    # RFC 9967 Figure 10: no payload, no full/notice qualifier.
    assert claims["events"] == {f"{PROV}:delete": {}}


def test_a_member_added_is_a_patch_event_adding_the_member(key: SigningKey) -> None:
    member = {"value": USER_ID, "type": "User"}
    claims = signed_claims(group_event("group.member_added", member=member), key)

    # The shape of RFC 9967 Figure 6: a PatchOp message in a full patch event.
    assert claims["sub_id"] == {"format": "scim", "uri": f"/Groups/{GROUP_ID}",
                                "externalId": "crmUsers"}
    assert claims["events"] == {
        f"{PROV}:patch:full": {
            "version": 'W/"7"',
            "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [member]}],
            },
        }
    }


def test_a_member_removed_is_a_patch_event_removing_the_member(key: SigningKey) -> None:
    event = group_event("group.member_removed", member={"value": 'odd"id', "type": "User"})
    patch = signed_claims(event, key)["events"][f"{PROV}:patch:full"]["data"]

    assert patch["Operations"] == [{"op": "remove", "path": 'members[value eq "odd\\"id"]'}]


def test_a_revoked_session_is_a_scimflow_event_about_the_user(key: SigningKey) -> None:
    session = {"id": "sess_1", "revoked_at": "2026-12-04T09:00:01Z"}
    claims = signed_claims(user_event("session.revoked", data=None, session=session), key)

    assert claims["sub_id"]["uri"] == f"/Users/{USER_ID}"
    assert claims["events"] == {"urn:scimflow:event:session:revoked": {"session": session}}


def test_without_a_request_the_transaction_is_the_event(key: SigningKey) -> None:
    event = group_event("group.created")
    claims = signed_claims(event, key)

    assert claims["txn"] == claims["jti"] == event["id"]
    assert "sub" not in claims


def test_several_audiences_are_a_list(key: SigningKey) -> None:
    claims = signed_claims(group_event("group.updated"), key,
                           audience=[AUDIENCE, "https://other.example.com"])

    assert claims["aud"] == [AUDIENCE, "https://other.example.com"]


def test_an_unknown_event_type_has_no_set(key: SigningKey) -> None:
    with pytest.raises(ValueError, match=r"user\.renamed"):
        event_set(user_event("user.renamed"), issuer=ISSUER, audience=AUDIENCE, key=key,
                  issued_at=ISSUED_AT)


def test_an_rsa_key_signs_rs256() -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    key = SigningKey(kid="rsa-2026", private_key_pem=pem)

    claims = signed_claims(user_event("user.created"), key)

    assert public_jwks([key])["keys"][0]["alg"] == "RS256"
    assert claims["jti"] == user_event("user.created")["id"]


def test_a_rotated_jwks_verifies_tokens_of_either_key(key: SigningKey) -> None:
    newer = generate_signing_key()
    jwks = public_jwks([newer, key])
    for signer in (key, newer):
        token = event_set(group_event("group.created"), issuer=ISSUER, audience=AUDIENCE,
                          key=signer, issued_at=ISSUED_AT)
        assert verify_set(token, jwks, audience=AUDIENCE)["iss"] == ISSUER


class TestVerificationRefuses:
    @pytest.fixture
    def token(self, key: SigningKey) -> str:
        return event_set(user_event("user.created"), issuer=ISSUER, audience=AUDIENCE, key=key,
                         issued_at=ISSUED_AT)

    def test_another_audience(self, key: SigningKey, token: str) -> None:
        with pytest.raises(SetVerificationError, match="addressed to"):
            verify_set(token, public_jwks([key]), audience="https://attacker.example.com")

    def test_an_unpublished_key(self, token: str) -> None:
        with pytest.raises(SetVerificationError, match="no published key"):
            verify_set(token, public_jwks([generate_signing_key()]), audience=AUDIENCE)

    def test_a_key_published_under_the_same_kid_but_different(self, key: SigningKey,
                                                              token: str) -> None:
        impostor = SigningKey(kid=key.kid, private_key_pem=generate_signing_key().private_key_pem)
        with pytest.raises(SetVerificationError, match="does not verify"):
            verify_set(token, public_jwks([impostor]), audience=AUDIENCE)

    def test_a_tampered_claim(self, key: SigningKey, token: str) -> None:
        header, claims, signature = token.split(".")
        decoded = json.loads(jwt.utils.base64url_decode(claims))
        decoded["sub_id"]["uri"] = "/Users/someone-else"
        forged = jwt.utils.base64url_encode(json.dumps(decoded).encode()).decode()
        with pytest.raises(SetVerificationError, match="does not verify"):
            verify_set(f"{header}.{forged}.{signature}", public_jwks([key]), audience=AUDIENCE)

    def test_alg_none(self, key: SigningKey, token: str) -> None:
        _, claims, _ = token.split(".")
        header = jwt.utils.base64url_encode(
            json.dumps({"alg": "none", "typ": SET_TYPE, "kid": key.kid}).encode()
        ).decode()
        with pytest.raises(SetVerificationError, match="alg 'none'"):
            verify_set(f"{header}.{claims}.", public_jwks([key]), audience=AUDIENCE)

    def test_a_token_that_is_not_a_set(self, key: SigningKey) -> None:
        pem = key.private_key_pem
        plain_jwt = jwt.encode({"aud": AUDIENCE, "events": {"x": {}}}, pem, algorithm="ES256",
                               headers={"kid": key.kid})
        with pytest.raises(SetVerificationError, match="typ"):
            verify_set(plain_jwt, public_jwks([key]), audience=AUDIENCE)

    def test_garbage(self, key: SigningKey) -> None:
        with pytest.raises(SetVerificationError, match="compact JWS"):
            verify_set("not-a-token", public_jwks([key]), audience=AUDIENCE)


def test_signing_does_not_alter_the_event(key: SigningKey) -> None:
    event = user_event("user.created")
    before = copy.deepcopy(event)
    event_set(event, issuer=ISSUER, audience=AUDIENCE, key=key, issued_at=ISSUED_AT)

    assert event == before
