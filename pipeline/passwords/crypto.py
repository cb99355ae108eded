"""Passwords for the writeOnly `password` attribute (RFC 7643 §4.1.1): `PasswordSeal` (the
API's sealing), `Argon2idHasher` (the workers' hashing, OWASP's parameters: 19 MiB, 2 passes,
1 lane), the verification of older PBKDF2-SHA256 hashes and the `PasswordPolicy`. A sealed
password exists only until its command is applied (or, dead-lettered, replayed or pruned).
See docs/ARCHITECTURE.md ("Passwords").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import argon2
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from scimflow.pipeline.ports import PasswordProtector

SEALED_PREFIX = "$sealed$"
_PBKDF2 = "pbkdf2_sha256"


class PasswordPolicy(StrEnum):
    HASH = "hash"
    IGNORE = "ignore"


class UnreadableSeal(ValueError):
    """A sealed password no configured key opens (the key was replaced, or none is set)."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def generate_key() -> str:
    """A new sealing key: 32 random bytes, URL-safe base64 (the `SCIMFLOW_PASSWORD_KEY` form)."""
    return Fernet.generate_key().decode("ascii")


class PasswordSeal:
    """Seals passwords with the first key and opens them with any key (rotation).

    Fernet: AES-128-CBC with an HMAC-SHA256 over the ciphertext, a random IV per seal.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError) as ex:
            raise ValueError(
                "a key must be 32 bytes in URL-safe base64 (scimflow password-key makes one)"
            ) from ex

    @classmethod
    def from_setting(cls, text: str) -> PasswordSeal:
        """Keys separated by commas, newest first: older ones only open what they sealed."""
        return cls([key.strip() for key in text.split(",") if key.strip()])

    def seal(self, cleartext: str) -> str:
        token = self._fernet.encrypt(cleartext.encode("utf-8"))
        return SEALED_PREFIX + token.decode("ascii")

    def open(self, sealed: str) -> str:
        if not is_sealed(sealed):
            raise UnreadableSeal("not a sealed password")
        try:
            return self._fernet.decrypt(sealed[len(SEALED_PREFIX):].encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as ex:
            raise UnreadableSeal("no configured password key opens this password") from ex


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """OWASP's argon2id minimum (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane."""

    memory_kib: int = 19_456
    time_cost: int = 2
    parallelism: int = 1


class Argon2idHasher:
    """argon2id hashes in the PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`)."""

    def __init__(self, parameters: Argon2Parameters = Argon2Parameters()) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            type=argon2.Type.ID,
        )

    def __call__(self, cleartext: str) -> str:
        return self._hasher.hash(cleartext)

    def verify(self, cleartext: str, encoded: str) -> bool:
        """argon2 or PBKDF2: a malformed stored value is a mismatch, never an error."""
        if encoded.startswith(_PBKDF2 + "$"):
            return _verify_pbkdf2(cleartext, encoded)
        try:
            return self._hasher.verify(encoded, cleartext)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether a verified hash should be replaced: PBKDF2, or weaker argon2 parameters."""
        if not encoded.startswith("$argon2"):
            return True
        try:
            return self._hasher.check_needs_rehash(encoded)
        except argon2.exceptions.InvalidHashError:
            return True


def verify_password(cleartext: str, encoded: str) -> bool:
    """Check a password against a stored argon2id or PBKDF2 hash, in constant time."""
    return Argon2idHasher().verify(cleartext, encoded)


def make_hasher(iterations: int) -> PasswordProtector:
    """PBKDF2-SHA256 (`pbkdf2_sha256$<iterations>$<salt>$<hash>`), the format before argon2id.

    Kept so that tools and tests can produce the older format cheaply; services hash with
    `Argon2idHasher`.
    """

    def hash_password(cleartext: str) -> str:
        salt = secrets.token_bytes(16)
        digest = hashlib.pbkdf2_hmac("sha256", cleartext.encode("utf-8"), salt, iterations)
        return "$".join((_PBKDF2, str(iterations), _b64(salt), _b64(digest)))

    return hash_password


def _verify_pbkdf2(cleartext: str, encoded: str) -> bool:
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
        if algorithm != _PBKDF2:
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
