"""Webhook signatures against the Standard Webhooks reference library (`standardwebhooks`)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from scimflow.pipeline.events.signing import (
    SignatureError,
    new_secret,
    signature_headers,
    verify,
)

BODY = b'{"id":"evt_0192","type":"user.created","data":{"userName":"bjensen"}}'
EVENT_ID = "evt_01923f4ab7c8d9e0f1a2b3c4d5e6f708"


def now() -> int:
    return int(datetime.now(UTC).timestamp())


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_the_reference_library_verifies_our_headers() -> None:
    secret = new_secret()
    headers = signature_headers(EVENT_ID, BODY, [secret], timestamp=now())

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == EVENT_ID
    assert Webhook(secret).verify(BODY, headers) is not None


def test_our_signature_is_the_one_the_reference_library_computes() -> None:
    secret, timestamp = new_secret(), 1_764_838_800
    headers = signature_headers(EVENT_ID, BODY, [secret], timestamp=timestamp)

    expected = Webhook(secret).sign(EVENT_ID, datetime.fromtimestamp(timestamp, UTC), BODY)
    assert headers["webhook-signature"] == expected
    assert headers["webhook-timestamp"] == "1764838800"


def test_we_verify_what_the_reference_library_signs() -> None:
    secret, timestamp = new_secret(), now()
    signature = Webhook(secret).sign(EVENT_ID, datetime.fromtimestamp(timestamp, UTC), BODY)
    headers = {"Webhook-Id": EVENT_ID, "Webhook-Timestamp": str(timestamp),
               "Webhook-Signature": signature}

    verify(BODY, headers, secret, now=timestamp)


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = signature_headers(EVENT_ID, BODY, [new, old], timestamp=now())

    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        verify(BODY, headers, secret, now=now())
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(SignatureError, match="no webhook signature matches"):
        verify(BODY, headers, new_secret(), now=now())


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, headers: (body + b" ", headers),
        lambda body, headers: (body, {**headers, "webhook-id": "evt_other"}),
        lambda body, headers: (
            body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}
        ),
    ],
    ids=["body", "id", "timestamp"],
)
def test_tampering_fails_verification(
    tamper: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]],
) -> None:
    secret = new_secret()
    headers = signature_headers(EVENT_ID, BODY, [secret], timestamp=now())
    body, tampered = tamper(BODY, headers)

    with pytest.raises(SignatureError):
        verify(body, tampered, secret, now=now())
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, tampered)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_outside_the_tolerance_is_refused(skew: int) -> None:
    secret, signed_at = new_secret(), 1_764_838_800
    headers = signature_headers(EVENT_ID, BODY, [secret], timestamp=signed_at)

    verify(BODY, headers, secret, now=signed_at + 300)
    verify(BODY, headers, secret, now=signed_at - 300)
    with pytest.raises(SignatureError, match="more than 300s"):
        verify(BODY, headers, secret, now=signed_at - skew)
    verify(BODY, headers, secret, now=signed_at - skew, tolerance_seconds=400)


def test_missing_headers_are_named() -> None:
    secret = new_secret()
    headers = signature_headers(EVENT_ID, BODY, [secret], timestamp=now())
    del headers["webhook-signature"]

    with pytest.raises(SignatureError, match="webhook-signature header is missing"):
        verify(BODY, headers, secret, now=now())


def test_a_signature_of_another_version_never_matches() -> None:
    secret = new_secret()
    headers = signature_headers(EVENT_ID, BODY, [secret], timestamp=now())
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,")

    with pytest.raises(SignatureError):
        verify(BODY, headers, secret, now=now())


def test_signing_needs_a_secret_and_a_well_formed_one() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        signature_headers(EVENT_ID, BODY, [], timestamp=now())
    with pytest.raises(ValueError, match="base64"):
        signature_headers(EVENT_ID, BODY, ["whsec_not base64!"], timestamp=now())
