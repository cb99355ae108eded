"""Passwords (RFC 7643 §4.1.1): sealed by the API, argon2id-hashed by the workers, and the
older PBKDF2-SHA256 format still verifiable."""

from __future__ import annotations

import base64
import hashlib

import pytest

from scimflow.pipeline.passwords.crypto import (
    SEALED_PREFIX,
    Argon2idHasher,
    Argon2Parameters,
    PasswordPolicy,
    PasswordSeal,
    UnreadableSeal,
    generate_key,
    is_sealed,
    make_hasher,
    verify_password,
)

PASSWORD = "t1meMa$heen"  # RFC 7643 §8.2
hasher = make_hasher(1000)


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_hash_format() -> None:
    """`pbkdf2_sha256$<iterations>$<salt>$<hash>`, unpadded URL-safe base64, 16-byte salt."""
    encoded = hasher(PASSWORD)
    algorithm, iterations, salt, digest = encoded.split("$")
    assert algorithm == "pbkdf2_sha256"
    assert iterations == "1000"
    assert len(unb64(salt)) == 16
    assert len(unb64(digest)) == 32
    assert "=" not in salt + digest
    assert set(salt + digest) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_hash_is_pbkdf2_sha256_of_the_salt() -> None:
    """The digest is PBKDF2-HMAC-SHA256(password, salt, iterations), so others can verify it."""
    _, iterations, salt, digest = hasher(PASSWORD).split("$")
    expected = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), unb64(salt), int(iterations))
    assert unb64(digest) == expected


def test_hash_never_contains_the_cleartext() -> None:
    """The point of hashing: the stored value does not reveal the password."""
    assert PASSWORD not in hasher(PASSWORD)


def test_salt_differs_per_call() -> None:
    """A fresh random salt per hash: equal passwords do not give equal hashes."""
    hashes = {hasher(PASSWORD) for _ in range(5)}
    assert len(hashes) == 5
    assert len({encoded.split("$")[2] for encoded in hashes}) == 5


def test_iteration_count_is_part_of_the_hash() -> None:
    """A hash keeps verifying after the configured cost changes: the count is stored with it."""
    old = make_hasher(1000)(PASSWORD)
    new = make_hasher(1500)(PASSWORD)
    assert new.split("$")[1] == "1500"
    assert verify_password(PASSWORD, old)
    assert verify_password(PASSWORD, new)


@pytest.mark.parametrize("cleartext", [PASSWORD, "", "pässwörd ✓", "a$b$c$d", "x" * 1000])
def test_verify_accepts_the_right_password(cleartext: str) -> None:
    """verify_password(p, hash(p)) for any string, including empty, non-ASCII and '$'."""
    assert verify_password(cleartext, hasher(cleartext))


@pytest.mark.parametrize("wrong", ["t1meMa$heeN", "t1meMa$heen ", "", "T1MEMA$HEEN"])
def test_verify_rejects_a_wrong_password(wrong: str) -> None:
    """Any other string, even one character or case away, does not verify."""
    assert not verify_password(wrong, hasher(PASSWORD))


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "t1meMa$heen",
        "not a hash",
        "a$b$c",
        "a$b$c$d$e",
        "md5$1000$c2FsdA$ZGlnZXN0",
        "pbkdf2_sha256$many$c2FsdA$ZGlnZXN0",
        "pbkdf2_sha256$0$c2FsdA$ZGlnZXN0",
        "pbkdf2_sha256$-5$c2FsdA$ZGlnZXN0",
        "pbkdf2_sha256$1000$a$ZGlnZXN0",
        "pbkdf2_sha256$1000$c2FsdA$",
        "pbkdf2_sha256$1000$c2FsdA$dïgèst",
        "pbkdf2_sha256$1000$$",
    ],
)
def test_verify_rejects_garbage_without_raising(garbage: str) -> None:
    """A malformed stored hash is a mismatch, never an exception (no 500 on a bad record)."""
    assert verify_password(PASSWORD, garbage) is False


def test_verify_rejects_a_hash_with_a_tampered_iteration_count() -> None:
    """The iteration count is covered: changing it breaks verification."""
    algorithm, _, salt, digest = hasher(PASSWORD).split("$")
    assert not verify_password(PASSWORD, "$".join((algorithm, "1001", salt, digest)))


def test_password_policies() -> None:
    """The two policies: `hash` (store a hash) and `ignore` (single sign-on: store nothing)."""
    assert {policy.value for policy in PasswordPolicy} == {"hash", "ignore"}
    assert PasswordPolicy("ignore") is PasswordPolicy.IGNORE


# --- argon2id, the format the workers write ----------------------------------------------------

# Small parameters for speed; the defaults are checked on their own below.
CHEAP = Argon2Parameters(memory_kib=256, time_cost=1, parallelism=1)


def test_argon2id_is_the_default_at_owasp_s_parameters() -> None:
    encoded = Argon2idHasher()(PASSWORD)
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in encoded


def test_argon2id_verifies_the_right_password_only() -> None:
    hasher = Argon2idHasher(CHEAP)
    encoded = hasher(PASSWORD)
    assert hasher.verify(PASSWORD, encoded)
    assert verify_password(PASSWORD, encoded)
    assert not hasher.verify("t1meMa$heeN", encoded)
    assert hasher(PASSWORD) != encoded  # a fresh salt each time


def test_pbkdf2_hashes_still_verify_and_ask_to_be_upgraded() -> None:
    hasher = Argon2idHasher(CHEAP)
    legacy = make_hasher(1000)(PASSWORD)
    assert hasher.verify(PASSWORD, legacy)
    assert not hasher.verify("wrong", legacy)
    assert hasher.needs_rehash(legacy)
    assert not hasher.needs_rehash(hasher(PASSWORD))


def test_weaker_argon2_parameters_ask_to_be_upgraded() -> None:
    weak = Argon2idHasher(CHEAP)(PASSWORD)
    assert Argon2idHasher().needs_rehash(weak)
    assert Argon2idHasher().verify(PASSWORD, weak)  # still verifies meanwhile


@pytest.mark.parametrize("garbage", ["", "$argon2id$v=19$m=8,t=1,p=1$bad", "$sealed$x"])
def test_argon2_side_rejects_garbage_without_raising(garbage: str) -> None:
    assert Argon2idHasher(CHEAP).verify(PASSWORD, garbage) is False
    assert Argon2idHasher(CHEAP).needs_rehash(garbage)


# --- sealing, between the API and the workers --------------------------------------------------


def test_a_sealed_password_opens_to_the_cleartext_and_never_shows_it() -> None:
    seal = PasswordSeal([generate_key()])
    sealed = seal.seal(PASSWORD)
    assert sealed.startswith(SEALED_PREFIX) and is_sealed(sealed)
    assert PASSWORD not in sealed
    assert seal.seal(PASSWORD) != sealed  # a fresh IV each time
    assert seal.open(sealed) == PASSWORD


def test_another_key_cannot_open_a_seal() -> None:
    sealed = PasswordSeal([generate_key()]).seal(PASSWORD)
    with pytest.raises(UnreadableSeal):
        PasswordSeal([generate_key()]).open(sealed)


def test_a_tampered_seal_is_refused() -> None:
    seal = PasswordSeal([generate_key()])
    sealed = seal.seal(PASSWORD)
    tampered = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    with pytest.raises(UnreadableSeal):
        seal.open(tampered)
    with pytest.raises(UnreadableSeal):
        seal.open(PASSWORD)  # not sealed at all


def test_key_rotation_opens_old_seals_and_seals_with_the_newest_key() -> None:
    old, new = generate_key(), generate_key()
    before = PasswordSeal([old]).seal(PASSWORD)
    rotated = PasswordSeal.from_setting(f"{new}, {old}")
    assert rotated.open(before) == PASSWORD
    assert PasswordSeal([new]).open(rotated.seal(PASSWORD)) == PASSWORD


@pytest.mark.parametrize("setting", ["", "short", "not base64 at all!!", ","])
def test_a_malformed_key_is_refused(setting: str) -> None:
    with pytest.raises(ValueError):
        PasswordSeal.from_setting(setting)
