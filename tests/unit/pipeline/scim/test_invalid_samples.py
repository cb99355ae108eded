"""Bodies that must be rejected: tests/samples/invalid/*.json (RFC 7644 §3.12, Table 9).

Per tests/samples/INDEX.md ("invalid/"): the file name's prefix is the expected `scimType` and
the status is 400 for every file. `*-patch-*` bodies are PATCHes of the RFC 7643 §8.2 user
(`PATCH /Users/2819c223-7f76-453a-919d-413861904646`); the others are `POST /Users` bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import pytest

from scimflow.pipeline.errors import ERROR_SCHEMA, ScimError
from scimflow.pipeline.scim.protocol import ScimProtocol
from tests.conftest import sample_paths

Load = Callable[[str], Any]

INVALID_SAMPLES = sample_paths("invalid/*.json")
BJENSEN_ID = "2819c223-7f76-453a-919d-413861904646"
# RFC 7644 Table 9 (plus "invalidVers", §3.13) lists the scimType values of a 400 response.
TABLE_9 = {
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
}


def expected_scim_type(sample: str) -> str:
    return PurePosixPath(sample).stem.split("-", 1)[0]


def rejection(protocol: ScimProtocol, sample: str, body: Any, bjensen: dict[str, Any]) -> ScimError:
    """Validate `body` as INDEX.md says and return the ScimError it raises."""
    with pytest.raises(ScimError) as raised:
        if "-patch-" in sample:
            protocol.validate_patch("User", BJENSEN_ID, body, bjensen)
        else:
            protocol.validate_create("User", "new-id", body)
    return raised.value


def test_the_corpus_has_invalid_samples() -> None:
    """INDEX.md "invalid/": every listed scimType prefix is a Table 9 value."""
    assert len(INVALID_SAMPLES) >= 17
    assert {expected_scim_type(s) for s in INVALID_SAMPLES} <= TABLE_9


@pytest.mark.parametrize("sample", INVALID_SAMPLES, ids=lambda s: PurePosixPath(s).stem)
def test_invalid_sample_is_rejected_with_its_scim_type(
    protocol: ScimProtocol, load_sample: Load, bjensen: dict[str, Any], sample: str
) -> None:
    """RFC 7644 §3.12 / Table 9: each invalid body fails with the scimType its name gives, 400."""
    error = rejection(protocol, sample, load_sample(sample), bjensen)
    assert type(error).scim_type == expected_scim_type(sample)
    assert error.scim_type == expected_scim_type(sample)
    assert error.status == 400


@pytest.mark.parametrize("sample", INVALID_SAMPLES, ids=lambda s: PurePosixPath(s).stem)
def test_invalid_sample_error_body_is_an_rfc7644_error(
    protocol: ScimProtocol, load_sample: Load, bjensen: dict[str, Any], sample: str
) -> None:
    """RFC 7644 §3.12: schemas [Error], status as a string, scimType and a human detail."""
    body = rejection(protocol, sample, load_sample(sample), bjensen).to_body()
    assert set(body) == {"schemas", "status", "scimType", "detail"}
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "400"
    assert isinstance(body["status"], str)
    assert body["scimType"] == expected_scim_type(sample)
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()


def test_no_target_sample_matches_nothing_on_the_8_2_user(bjensen: dict[str, Any]) -> None:
    """INDEX.md: the noTarget replace is only invalid because §8.2 has no "other" address."""
    assert {address["type"] for address in bjensen["addresses"]} == {"work", "home"}


def test_rejected_patch_leaves_the_current_resource_untouched(
    protocol: ScimProtocol, load_sample: Load, bjensen: dict[str, Any]
) -> None:
    """RFC 7644 §3.5.2: a PATCH is atomic; a failing one changes nothing."""
    snapshot = {**bjensen, "addresses": [dict(a) for a in bjensen["addresses"]]}
    body = load_sample("invalid/noTarget-patch-replace-filter-no-match.json")
    with pytest.raises(ScimError):
        protocol.validate_patch("User", BJENSEN_ID, body, bjensen)
    assert bjensen == snapshot
