"""Password hashing for the writeOnly `password` attribute (RFC 7643 §4.1.1, §7 of RFC 7644).

A cleartext password never leaves the request: validation replaces it with a salted
PBKDF2-SHA256 hash before the command is journaled, so neither the journal nor the directory
tables ever hold it. Single sign-on applications that do not want passwords at all can set
the policy to `ignore`, and passwords are then dropped instead of hashed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from enum import StrEnum

PasswordHasher = Callable[[str], str]

_ALGORITHM = "pbkdf2_sha256"


class PasswordPolicy(StrEnum):
    HASH = "hash"
    IGNORE = "ignore"


def make_hasher(iterations: int) -> PasswordHasher:
    """Return a hasher producing `pbkdf2_sha256$<iterations>$<salt>$<hash>` strings."""

    def hash_password(cleartext: str) -> str:
        salt = secrets.token_bytes(16)
        digest = hashlib.pbkdf2_hmac("sha256", cleartext.encode("utf-8"), salt, iterations)
        return "$".join((_ALGORITHM, str(iterations), _b64(salt), _b64(digest)))

    return hash_password


def verify_password(cleartext: str, encoded: str) -> bool:
    """Check a cleartext password against an encoded hash in constant time.

    A malformed hash (bad iteration count, bad base64, non-ASCII text) is a mismatch, not an
    error: a corrupted stored value must not turn a login into a server failure.
    """
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
        if algorithm != _ALGORITHM:
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", cleartext.encode("utf-8"), _unb64(salt), int(iterations)
        )
    except ValueError:  # also binascii.Error, and pbkdf2_hmac's for iterations < 1
        return False
    # Bytes, not str: compare_digest raises TypeError on non-ASCII strings.
    return hmac.compare_digest(_b64(digest).encode("ascii"), expected.encode("utf-8"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
