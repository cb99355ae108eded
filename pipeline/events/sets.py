"""scimflow events as SCIM Security Event Tokens (RFC 9967 profile of RFC 8417 SETs).

One event document (`model.event_document`) becomes one SET, a compact JWS whose header is
`typ: secevent+jwt` with the signing key's `alg` and `kid`, sent as `application/secevent+jwt`
(RFC 8935 push) and verifiable against the JWKS scimflow publishes (`public_jwks`).

Claims (RFC 9967 §2.1, §2.2):

- `jti` is the event id: the same on every retry and for every receiver of the event, so a
  receiver deduplicates by it;
- `txn` is the API request id when the change came from a request, else the event id. RFC 9967
  defines `txn` as the transaction at the service provider that one or more SETs arise from;
  every event of one SCIM request carries that request's id (the `X-Request-Id` the identity
  provider was answered with), so a receiver can correlate them with the IdP's request;
- `sub_id` uses the `scim` format: `uri` (`/Users/<id>` or `/Groups/<id>`, relative to the SCIM
  base URL), `externalId` when known, and for users `userName`, unique per tenant (RFC 9967
  allows attributes with server uniqueness); `sub` is never used;
- `toe` (RFC 8417) is when the change was applied; `iat` when the SET was issued.

Event URIs ("full" mode: `data` is the resource's final SCIM representation, and `version` its
ETag, as the RFC's examples show; `changed_attributes` has no place, the RFC forbids
`attributes` next to `data`):

- `*.created`: `prov:create:full`;
- `*.updated`: `prov:put:full`. RFC 9967 §2.4.3 carries the whole resource, which is what
  scimflow has after the change; `prov:patch:full` would carry a PatchOp message instead;
- `user.reactivated`: `prov:put:full` and `prov:activate`;
- `user.deprovisioned`: `prov:put:full` and `prov:deactivate`;
- `*.deleted`: `prov:delete`, empty (no payload, so no full/notice qualifier);
- `group.member_added`: `prov:patch:full` whose `data` is the PatchOp adding the member
  (`op: add`, `path: members`), the shape of the RFC's own group example, and what its
  §5 advises for groups (PATCH events rather than whole groups);
- `group.member_removed`: `prov:patch:full` whose `data` is the PatchOp removing it
  (`op: remove`, `path: members[value eq "<id>"]`);
- `session.revoked`: `urn:scimflow:event:session:revoked` with `{"session": {...}}`, its
  subject the user. Neither RFC 9967 nor RFC 8417 defines a session event, so the URI is
  scimflow's own;
- `user.roles_changed`: `urn:scimflow:event:user:roles_changed` with the version and
  `{"roles": [...], "added": [...], "removed": [...]}`, scimflow's own as well.

Two event URIs in one SET are allowed by RFC 9967 §2.1: they arise from one state change of one
resource. RFC 9967's `feed:add` / `feed:remove` are not used for memberships: they mean a
resource joined or left the event feed, not a group.

The JWS is built with `cryptography` directly (ES256 on P-256 keys, RS256 on RSA keys):
`verify_set` is the reference verifier for tests and docs/EVENTS.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from scimflow.pipeline.scim.meta import weak_etag

SET_TYPE = "secevent+jwt"
SET_MEDIA_TYPE = "application/secevent+jwt"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

PROV = "urn:ietf:params:scim:event:prov"
CREATE_FULL = f"{PROV}:create:full"
PUT_FULL = f"{PROV}:put:full"
PATCH_FULL = f"{PROV}:patch:full"
DELETE = f"{PROV}:delete"
ACTIVATE = f"{PROV}:activate"
DEACTIVATE = f"{PROV}:deactivate"
SESSION_REVOKED = "urn:scimflow:event:session:revoked"
ROLES_CHANGED = "urn:scimflow:event:user:roles_changed"

ENDPOINTS = {"User": "/Users", "Group": "/Groups"}
ES256_COORDINATE_BYTES = 32
ALGORITHMS = ("ES256", "RS256")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class SetVerificationError(ValueError):
    """A SET that is malformed, not signed by a published key, or not meant for this audience."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A SET signing key: its `kid` and the private key as PEM (PKCS#8)."""

    kid: str
    private_key_pem: bytes


def generate_signing_key() -> SigningKey:
    """A new P-256 key (ES256), its `kid` the RFC 7638 thumbprint of its public JWK."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kid = jwk_thumbprint(_public_members(private_key.public_key()))
    return SigningKey(kid=kid, private_key_pem=pem)


def public_jwks(keys: Sequence[SigningKey]) -> dict[str, Any]:
    """The JWKS document receivers verify SETs with (every key still signing or recently did)."""
    return {"keys": [public_jwk(key) for key in keys]}


def public_jwk(key: SigningKey) -> dict[str, Any]:
    private_key = _private_key(key.private_key_pem)
    return {
        **_public_members(private_key.public_key()),
        "use": "sig",
        "alg": _algorithm(private_key),
        "kid": key.kid,
    }


def jwk_thumbprint(members: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(dict(sorted(members.items())), separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def event_set(
    event: Mapping[str, Any],
    *,
    issuer: str,
    audience: str | Sequence[str],
    key: SigningKey,
    issued_at: int,
) -> str:
    """The signed SET of one scimflow event document."""
    claims = set_claims(event, issuer=issuer, audience=audience, issued_at=issued_at)
    return sign_claims(claims, key)


def set_claims(
    event: Mapping[str, Any], *, issuer: str, audience: str | Sequence[str], issued_at: int
) -> dict[str, Any]:
    """The SET's claims, before signing."""
    return {
        "iss": issuer,
        "iat": issued_at,
        "jti": event["id"],
        "aud": audience if isinstance(audience, str) else list(audience),
        "txn": event.get("request_id") or event["id"],
        "toe": int(datetime.fromisoformat(event["occurred_at"]).timestamp()),
        "sub_id": subject_id(event["resource"]),
        "events": scim_events(event),
    }


def subject_id(resource: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 9967 §2.1 `sub_id` of the resource an event is about."""
    subject: dict[str, Any] = {
        "format": "scim",
        "uri": f"{ENDPOINTS[resource['type']]}/{resource['id']}",
    }
    if resource.get("externalId") is not None:
        subject["externalId"] = resource["externalId"]
    if resource["type"] == "User" and resource.get("userName") is not None:
        subject["userName"] = resource["userName"]
    return subject


def scim_events(event: Mapping[str, Any]) -> dict[str, Any]:
    """The `events` claim: event URIs and their payloads (see the table above)."""
    event_type: str = event["type"]
    kind = event_type.partition(".")[2]
    version = weak_etag(event["resource"]["version"])
    full = {"version": version, "data": event.get("data")}
    if kind == "created":
        return {CREATE_FULL: full}
    if kind == "updated":
        return {PUT_FULL: full}
    if kind == "reactivated":
        return {PUT_FULL: full, ACTIVATE: {}}
    if kind == "deprovisioned":
        return {PUT_FULL: full, DEACTIVATE: {}}
    if kind == "deleted":
        return {DELETE: {}}
    if kind in ("member_added", "member_removed"):
        return {PATCH_FULL: {"version": version, "data": _membership_patch(kind, event["member"])}}
    if event_type == "session.revoked":
        return {SESSION_REVOKED: {"session": event["session"]}}
    if event_type == "user.roles_changed":
        return {ROLES_CHANGED: {"version": version, "roles": event["roles"]}}
    raise ValueError(f"no Security Event Token is defined for event type {event_type!r}")


def _membership_patch(kind: str, member: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "member_added":
        operation: dict[str, Any] = {"op": "add", "path": "members", "value": [dict(member)]}
    else:
        # A filter's string operand is a JSON string, so json.dumps quotes and escapes it.
        operation = {"op": "remove", "path": f"members[value eq {json.dumps(member['value'])}]"}
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": [operation]}


def sign_claims(claims: Mapping[str, Any], key: SigningKey) -> str:
    """A compact JWS (RFC 7515) of the claims, typed as a SET."""
    private_key = _private_key(key.private_key_pem)
    header = {"alg": _algorithm(private_key), "kid": key.kid, "typ": SET_TYPE}
    signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{_b64url(_signature(private_key, signing_input))}"


def verify_set(token: str, jwks: Mapping[str, Any], *, audience: str) -> dict[str, Any]:
    """The claims of a SET signed by a key of `jwks` and addressed to `audience`."""
    try:
        header_part, claims_part, signature_part = token.split(".")
        header = json.loads(_b64url_decode(header_part))
        claims = json.loads(_b64url_decode(claims_part))
        signature = _b64url_decode(signature_part)
    except ValueError as exc:
        raise SetVerificationError(f"not a compact JWS: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise SetVerificationError("a JWS header and a SET are JSON objects")
    if header.get("typ") != SET_TYPE:
        raise SetVerificationError(f"typ is {header.get('typ')!r}, not {SET_TYPE!r}")
    jwk = _published_key(jwks, header)
    _verify_signature(_public_key(jwk), header["alg"], f"{header_part}.{claims_part}", signature)
    _check_claims(claims, audience)
    return claims


def _published_key(jwks: Mapping[str, Any], header: Mapping[str, Any]) -> Mapping[str, Any]:
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise SetVerificationError(f"alg {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == header.get("kid"):
            if jwk.get("alg", algorithm) != algorithm or jwk.get("use", "sig") != "sig":
                raise SetVerificationError(f"key {jwk['kid']!r} is not an {algorithm} signing key")
            return dict(jwk)
    raise SetVerificationError(f"no published key has kid {header.get('kid')!r}")


def _check_claims(claims: Mapping[str, Any], audience: str) -> None:
    audiences = claims.get("aud")
    listed = [audiences] if isinstance(audiences, str) else list(audiences or [])
    if audience not in listed:
        raise SetVerificationError(f"the SET is addressed to {listed}, not {audience!r}")
    if not isinstance(claims.get("events"), dict) or not claims["events"]:
        raise SetVerificationError("a SET carries at least one event in its events claim")
    if "sub" in claims:
        raise SetVerificationError("RFC 9967 SETs identify their subject with sub_id, never sub")


def _algorithm(private_key: PrivateKey) -> str:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(private_key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(f"SET signing keys are P-256 or RSA, not {private_key.curve.name}")


def _signature(private_key: PrivateKey, signing_input: bytes) -> bytes:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    # JWS carries an ECDSA signature as r || s, fixed width, not DER (RFC 7518 §3.4).
    r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(ES256_COORDINATE_BYTES, "big") + s.to_bytes(ES256_COORDINATE_BYTES, "big")


def _verify_signature(key: PublicKey, algorithm: str, signing_input: str, signature: bytes) -> None:
    data = signing_input.encode("ascii")
    try:
        if algorithm == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return
        if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * ES256_COORDINATE_BYTES:
                raise InvalidSignature
            r = int.from_bytes(signature[:ES256_COORDINATE_BYTES], "big")
            s = int.from_bytes(signature[ES256_COORDINATE_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
            return
    except InvalidSignature as exc:
        raise SetVerificationError("the SET's signature does not verify") from exc
    raise SetVerificationError(f"the published key does not fit alg {algorithm}")


@lru_cache(maxsize=16)
def _private_key(pem: bytes) -> PrivateKey:
    # Cached: parsing a key costs more than signing one SET with it.
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("SET signing keys are P-256 or RSA private keys")
    return key


def _public_members(public_key: PublicKey) -> dict[str, str]:
    """The JWK members RFC 7638 thumbprints (and a verifier needs)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"kty": "RSA", "n": _b64url_int(numbers.n), "e": _b64url_int(numbers.e)}
    point = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(point.x.to_bytes(ES256_COORDINATE_BYTES, "big")),
        "y": _b64url(point.y.to_bytes(ES256_COORDINATE_BYTES, "big")),
    }


def _public_key(jwk: Mapping[str, Any]) -> PublicKey:
    try:
        if jwk["kty"] == "RSA":
            return rsa.RSAPublicNumbers(
                _int_b64url(jwk["e"]), _int_b64url(jwk["n"])
            ).public_key()
        if jwk["kty"] == "EC" and jwk["crv"] == "P-256":
            return ec.EllipticCurvePublicNumbers(
                _int_b64url(jwk["x"]), _int_b64url(jwk["y"]), ec.SECP256R1()
            ).public_key()
    except (KeyError, ValueError) as exc:
        raise SetVerificationError(f"published key {jwk.get('kid')!r} is malformed") from exc
    raise SetVerificationError(f"published key {jwk.get('kid')!r} is neither RSA nor P-256")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_int(number: int) -> str:
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8 or 1, "big"))


def _int_b64url(text: str) -> int:
    return int.from_bytes(_b64url_decode(text), "big")
