"""Webhook signatures as the Standard Webhooks specification defines them.

A delivery carries three headers: `webhook-id` (the event id, the same on every retry, so a
receiver can deduplicate), `webhook-timestamp` (unix seconds of the attempt) and
`webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`,
one per secret. Several secrets sign at once during a rotation, so a receiver holding either the
old or the new secret accepts the delivery. A secret is `whsec_` followed by the base64 of its
key bytes; the key is the decoded part.

`verify` is the reference receiver (tests and docs/EVENTS.md follow it): any listed `v1`
signature may match, compared in constant time, and a timestamp outside the tolerance is
refused (a replayed delivery is only accepted within that window).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_source
from collections.abc import Mapping, Sequence
from functools import lru_cache

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_BYTES = 32
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """A delivery whose signature headers do not prove it came from the holder of the secret."""


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random_source.token_bytes(SECRET_BYTES)).decode()


@lru_cache(maxsize=1024)
def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_…` secret stands for (the prefix is optional, as the spec allows);
    remembered, as every delivery to an endpoint signs with the same few secrets."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def sign(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a delivery."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(
    event_id: str, body: bytes, secrets: Sequence[str], *, timestamp: int
) -> dict[str, str]:
    """The three headers of a delivery, signed with every given secret (rotation)."""
    if not secrets:
        raise ValueError("a webhook delivery needs at least one secret to sign with")
    signatures = [sign(secret_key(secret), event_id, timestamp, body) for secret in secrets]
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signatures),
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Accept the delivery or raise `SignatureError` saying why not."""
    lowered = {name.lower(): value for name, value in headers.items()}
    event_id = _required(lowered, ID_HEADER)
    timestamp = _timestamp(_required(lowered, TIMESTAMP_HEADER))
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(
            f"webhook timestamp {timestamp} is more than {tolerance_seconds}s from now ({now})"
        )
    expected = sign(secret_key(secret), event_id, timestamp, body).encode()
    listed = _required(lowered, SIGNATURE_HEADER).split()
    # Every listed signature is compared, so the time taken does not reveal which one matched.
    matched = [hmac.compare_digest(expected, candidate.encode()) for candidate in listed]
    if not any(matched):
        raise SignatureError("no webhook signature matches the secret")


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise SignatureError(f"the {name} header is missing")
    return value


def _timestamp(value: str) -> int:
    if not value.isdigit():
        raise SignatureError(f"the {TIMESTAMP_HEADER} header is not unix seconds: {value!r}")
    return int(value)
