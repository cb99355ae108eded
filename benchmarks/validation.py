"""Validate-and-normalise throughput of the protocol (`ScimProtocol`) on one core.

Measures, in one run and on one pinned core:
- the baseline: `json.loads` of the request body, the parsing every HTTP framework does anyway;
- a second baseline: a bare Falcon WSGI app that only parses the same body, called in-process
  (no socket), i.e. the framework's own per-request cost;
- an Okta `POST /Users` body validated into a canonical command (with and without parsing);
- the same body carrying a password, sealed as the API does (the acknowledgement path), and
  the argon2id hash at OWASP's parameters a worker computes when it applies it;
- an Entra default-mode multi-operation `PATCH /Users/{id}` normalised and applied in memory;
- a filter (`userName eq "..."`) parsed and checked, as every IdP existence check does.

Prints operations per second (median of several rounds) and each figure's ratio to the baseline.
Usage: python benchmarks/validation.py [--seconds 0.5] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scimflow.pipeline.passwords.crypto import Argon2idHasher, PasswordSeal, generate_key
from scimflow.pipeline.scim.evaluate import check_filter
from scimflow.pipeline.scim.filters import parse_filter
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.registry import default_registry

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "samples" / "idp"
OKTA_CREATE = SAMPLES / "okta" / "okta-create-user.json"
ENTRA_CREATE = SAMPLES / "entra" / "entra-create-user.json"
ENTRA_PATCH = SAMPLES / "entra" / "entra-patch-user-multi-op.json"


def _rate(action: Callable[[], Any], seconds: float, rounds: int) -> float:
    """Median operations per second over `rounds` rounds of about `seconds` each."""
    batch = _calibrate(action, seconds)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch):
            action()
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def _calibrate(action: Callable[[], Any], seconds: float) -> int:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 5:
        action()
        count += 1
    return max(count * 5, 10)


def _cases(protocol: ScimProtocol, sealing: ScimProtocol) -> dict[str, Callable[[], Any]]:
    okta_text = OKTA_CREATE.read_text("utf-8")
    okta_body = json.loads(okta_text)
    okta_sso = {k: v for k, v in okta_body.items() if k != "password"}
    patch_text = ENTRA_PATCH.read_text("utf-8")
    patch_body = json.loads(patch_text)
    current = protocol.validate_create("User", "u1", json.loads(ENTRA_CREATE.read_text("utf-8")))
    state = current.resource or {}
    user_type = protocol.resource_type("User")
    return {
        "baseline: json.loads(Okta POST body)": lambda: json.loads(okta_text),
        "baseline: bare Falcon app parsing the body (in-process)": _bare_falcon(okta_text),
        "Okta POST /Users: validate (SSO, no password)": lambda: protocol.validate_create(
            "User", "u1", okta_sso
        ),
        "Okta POST /Users: json.loads + validate": lambda: protocol.validate_create(
            "User", "u1", json.loads(okta_text)
        ),
        "Okta POST /Users with password: validate + seal (the API)": lambda: (
            sealing.validate_create("User", "u1", okta_body)
        ),
        "the worker's argon2id hash of that password (OWASP parameters)": _argon2id(okta_body),
        "Entra PATCH /Users (multi-op): normalise + apply": lambda: protocol.validate_patch(
            "User", "u1", patch_body, state
        ),
        "Entra PATCH /Users: json.loads + normalise + apply": lambda: protocol.validate_patch(
            "User", "u1", json.loads(patch_text), state
        ),
        'filter userName eq "...": parse + check': lambda: check_filter(
            parse_filter('userName eq "bjensen@example.com"'), user_type
        ),
    }


def _argon2id(body: dict[str, Any]) -> Callable[[], Any]:
    hasher = Argon2idHasher()
    password = str(body["password"])
    return lambda: hasher(password)


def _bare_falcon(body: str) -> Callable[[], Any]:
    """A Falcon app whose only responder parses the media, called through WSGI in-process."""
    import falcon  # noqa: PLC0415 - benchmarks only; the domain never imports falcon
    import falcon.testing  # noqa: PLC0415

    class Parse:
        def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {"id": "u1", "userName": req.get_media()["userName"]}

    app = falcon.App()
    app.add_route("/Users", Parse())
    raw = body.encode()

    def call() -> Any:
        environ = falcon.testing.create_environ(
            path="/Users", method="POST", body=raw, headers={"Content-Type": "application/json"}
        )
        return b"".join(app(environ, lambda status, headers: None))

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    registry = default_registry()
    protocol = ScimProtocol(registry)
    sealing = ScimProtocol(registry, protect_password=PasswordSeal([generate_key()]).seal)
    results: dict[str, float] = {}
    for name, action in _cases(protocol, sealing).items():
        rounds = 1 if "argon2id" in name else args.rounds
        results[name] = _rate(action, args.seconds, rounds)
    _report(results, args.json)


def _report(results: dict[str, float], as_json: bool) -> None:
    rates = iter(results.values())
    parse, framework = next(rates), next(rates)
    if as_json:
        print(json.dumps({
            name: {
                "ops_per_s": round(rate),
                "ratio_to_json_loads": round(rate / parse, 3),
                "ratio_to_bare_falcon": round(rate / framework, 3),
            }
            for name, rate in results.items()
        }))
        return
    print(f"{'case':<58} {'ops/s':>10} {'vs json.loads':>14} {'vs bare Falcon':>15}")
    for name, rate in results.items():
        print(f"{name:<58} {rate:>10,.0f} {rate / parse:>13.3f}x {rate / framework:>14.3f}x")


if __name__ == "__main__":
    main()
