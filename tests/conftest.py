"""Shared fixtures and helpers for the test suite.

The request samples live in `tests/samples/` (catalogued, with sources, in
`tests/samples/INDEX.md`). Tests load them by path relative to that directory:

    def test_x(load_sample, protocol):
        body = load_sample("idp/okta/okta-create-user.json")
        command = protocol.validate_create("User", "u1", body)

The plain functions below (`read_sample`, `sample_paths`, `patch_body`, `canonical`) can be
imported by test modules (`from tests.conftest import ...`) where a fixture cannot be used,
e.g. in `pytest.mark.parametrize` arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scimflow.pipeline.passwords.crypto import make_hasher
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# A deliberately cheap PBKDF2 cost: hashing is exercised, not benchmarked.
TEST_HASH_ITERATIONS = 1000
FAST_HASHER = make_hasher(TEST_HASH_ITERATIONS)


def read_sample(relative_path: str) -> Any:
    """Parse one sample file; every call returns a fresh object, so tests may mutate it."""
    return json.loads((SAMPLES_DIR / relative_path).read_text("utf-8"))


def sample_paths(pattern: str) -> list[str]:
    """Sample paths (relative to tests/samples, '/'-separated) matching a glob, sorted."""
    return sorted(path.relative_to(SAMPLES_DIR).as_posix() for path in SAMPLES_DIR.glob(pattern))


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp request body (RFC 7644 §3.5.2) carrying `operations`."""
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def make_protocol() -> ScimProtocol:
    """The protocol every test uses: built-in schemas, passwords hashed at the test cost."""
    return ScimProtocol(default_registry(), protect_password=FAST_HASHER)


def canonical(
    protocol: ScimProtocol, type_name: str, relative_path: str, **changes: Any
) -> dict[str, Any]:
    """The canonical resource a sample body validates into (POST), with top-level `changes`.

    A change whose value is None removes that attribute; this is how tests build a "current"
    resource for PUT and PATCH from a create sample.
    """
    body = read_sample(relative_path)
    resource = protocol.validate_create(type_name, "current", body).resource
    assert resource is not None
    for name, value in changes.items():
        if value is None:
            resource.pop(name, None)
        else:
            resource[name] = value
    return resource


@pytest.fixture
def load_sample() -> Callable[[str], Any]:
    """`load_sample("rfc7643/rfc7643-8.2-full-user.json")` -> the parsed JSON (a fresh copy)."""
    return read_sample


@pytest.fixture(scope="session")
def protocol() -> ScimProtocol:
    """`ScimProtocol(default_registry(), protect_password=make_hasher(1000))`; it is stateless."""
    return make_protocol()


@pytest.fixture
def bjensen(protocol: ScimProtocol) -> dict[str, Any]:
    """The canonical RFC 7643 §8.2 user (password stored as a hash of "t1meMa$heen")."""
    return canonical(protocol, "User", "rfc7643/rfc7643-8.2-full-user.json")


@pytest.fixture
def tour_guides(protocol: ScimProtocol) -> dict[str, Any]:
    """The canonical RFC 7643 §8.4 group with its two members."""
    return canonical(protocol, "Group", "rfc7643/rfc7643-8.4-group.json")
