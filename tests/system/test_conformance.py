"""scim2-tester, a public SCIM 2.0 conformance checker, against a running scimflow.

scim2-tester (https://scim2-tester.readthedocs.io) discovers the server from its own
`/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`, builds the resource models from what
is published there (User with the enterprise extension, Group), then runs every check it has:
discovery endpoints and their 405s, an unknown URL, and per resource type create, read, list,
`attributes` / `excludedAttributes` on GET, list and `/.search`, replace, delete, and PATCH
add / remove / replace of every writable attribute.

It runs against both deployments, over real HTTP:

- the embedded default, `scimflow serve` (API and in-process worker on a SQLite file);
- the production stack of docker-compose.yml (gunicorn, Celery workers, beat) on PostgreSQL
  and Redis, from `tests/system/conftest.py`.

One thing is given to the client rather than discovered: `/ServiceProviderConfig` also carries
RFC 9967's `securityEvents` (May 2026) and scimflow's events extension, which scim2-models'
ServiceProviderConfig, older than RFC 9967, refuses as extra attributes. The test checks those
two are there, validates everything else of the document with scim2-models, and hands that to
the client; scim2-tester's own check of the endpoint is then expected to report exactly those
two attributes, and nothing else (`is_failure`).

scimflow acknowledges a write before a worker applies it, and scim2-tester reads right after
every write; it runs without any waiting, so it also checks read-your-writes (memberships
included: pending member changes are projected onto the applied ones). The deterministic form
of that check, with the workers stopped, is `test_group_membership_is_visible_once_acknowledged`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import ScimProvider, ServiceProviderConfig
from scim2_tester import CheckResult, Status, check_server

from tests.support.services import free_port
from tests.system.stack import VENV_BIN, Stack, stop_serving, wait_until_serving

SCIMFLOW = str(VENV_BIN / "scimflow")

# Statuses that mean "conforms". scim2-tester 0.5.2 only ever reports SUCCESS, ERROR and
# SKIPPED; COMPLIANT (follows a SHOULD) and ACCEPTABLE (uses a MAY) are conformant by its own
# definitions. DEVIATION (departs from a SHOULD), ERROR and CRITICAL are failures.
PASSING = frozenset({Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE})

# SKIPPED results that are legitimate, by their `reason`, each with why. None is today. The
# skips scim2-tester 0.5.2 can report, and why each would be a failure against scimflow:
# - "Skipped due to tag filtering / exclusion": the suite runs with no tag filter.
# - "PATCH operations not supported by server": scimflow advertises `patch.supported: true`.
# - "No addable / removable / replaceable attributes found", "No suitable attributes to test
#   filtering": both discovered models have such attributes; a skip would mean discovery lost
#   them.
# - "POST /.search: searching several resource types at once is not supported": scimflow
#   serves the root `/.search` (RFC 7644 §3.4.3).
# It has no check at all for the features scimflow does not advertise (`bulk.supported` is
# false), so no /Bulk skip can occur.
LEGITIMATE_SKIPS: dict[str, str] = {}

# What /ServiceProviderConfig carries beyond RFC 7643 (see the module's docstring).
SECURITY_EVENTS = "securityEvents"
EVENTS_EXTENSION = "urn:scimflow:schemas:extension:events:1.0:ServiceProviderConfig"
SPC_CHECK = "service_provider_config_endpoint"

# Resource types scimflow publishes; the CRUD and PATCH checks must have run for each.
RESOURCE_TYPES = frozenset({"User", "Group"})


@dataclass(frozen=True)
class Target:
    """A running scimflow and one tenant on it."""

    mode: str
    base_url: str
    token: str
    database_url: str


# --- the embedded default ---------------------------------------------------------------------


def _embedded_env(database_url: str) -> dict[str, str]:
    """The caller's environment without any SCIMFLOW_* setting, then only what the test needs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCIMFLOW_")}
    env.update(
        {
            "SCIMFLOW_DATABASE_URL": database_url,
            # Hashing cost only (the default 600k PBKDF2 rounds per password); same code path.
            "SCIMFLOW_PASSWORD_ITERATIONS": "1000",
            "SCIMFLOW_LOG_LEVEL": "WARNING",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Target]:
    """`scimflow serve` on a free port and a fresh SQLite file, with one tenant from the CLI."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'scimflow.sqlite3'}"
    env = _embedded_env(database_url)
    subprocess.run([SCIMFLOW, "migrate"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        # No SCIMFLOW_PUBLIC_URL: serve derives its Locations from --host and --port.
        process = subprocess.Popen(
            [SCIMFLOW, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", process, log)
        # The CLI does not know where serve listens; told, it prints the matching base URL.
        created = subprocess.run(
            [SCIMFLOW, "tenant", "create", "conformance", "--json"],
            env={**env, "SCIMFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}"},
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert created.returncode == 0, created.stderr.decode()[-2000:]
        tenant = json.loads(created.stdout)
        assert tenant["base_url"] == f"http://127.0.0.1:{port}/scim/v2"
        yield Target(
            "embedded (scimflow serve, SQLite)", tenant["base_url"], tenant["token"], database_url
        )
    finally:
        stop_serving(process)


# --- running scim2-tester ---------------------------------------------------------------------


def run_scim2_tester(target: Target) -> list[CheckResult]:
    """scim2-tester's whole suite, through a client that knows nothing but the base URL."""
    http = httpx2.Client(
        base_url=target.base_url,
        timeout=30,
        headers={"Authorization": f"Bearer {target.token}"},
    )
    try:
        # No models or resource types given: check_server discovers them.
        provider = ScimProvider(config=rfc7643_config(http))
        return check_server(SyncSCIMClient(http, provider=provider))
    finally:
        http.close()


def rfc7643_config(http: httpx2.Client) -> ServiceProviderConfig:
    """The published configuration: its RFC 9967 part checked here, the rest by scim2-models."""
    published = http.get("/ServiceProviderConfig").json()
    assert published[SECURITY_EVENTS]["eventUris"], published
    assert published[EVENTS_EXTENSION]["jwksUri"].endswith("/events/jwks.json"), published
    rest = {key: value for key, value in published.items()
            if key not in (SECURITY_EVENTS, EVENTS_EXTENSION)}
    rest["schemas"] = [schema for schema in rest["schemas"] if schema != EVENTS_EXTENSION]
    return ServiceProviderConfig.model_validate(rest)


def is_failure(result: CheckResult) -> bool:
    if result.status in PASSING:
        return False
    if result.title == SPC_CHECK and result.status is Status.ERROR:
        return not only_rfc9967_refused(result.reason or "")
    return not (result.status is Status.SKIPPED and result.reason in LEGITIMATE_SKIPS)


def only_rfc9967_refused(reason: str) -> bool:
    """Whether scim2-models refused the configuration for its RFC 9967 attributes alone."""
    refused = [line.strip().strip("`") for line in reason.splitlines()
               if line and not line.startswith(" ") and "validation error" not in line]
    return bool(refused) and set(refused) <= {SECURITY_EVENTS, EVENTS_EXTENSION}


def _short(value: Any, limit: int = 1500) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + " ..."


def describe(result: CheckResult) -> str:
    reason = (result.reason or "").replace("\n", "\n      ")
    return (
        f"[{result.status.name}] {result.resource_type or '-'} {result.title}\n"
        f"      {reason}\n      data: {_short(result.data)}"
    )


def print_summary(target: Target, results: list[CheckResult]) -> None:
    by_status = Counter(result.status.name for result in results)
    by_check: dict[tuple[str, str], Counter[str]] = {}
    for result in results:
        key = (result.resource_type or "-", result.title or "?")
        by_check.setdefault(key, Counter())[result.status.name] += 1
    print(
        f"\nscim2-tester {version('scim2-tester')} against scimflow, {target.mode}: "
        f"{len(results)} results: "
        + ", ".join(f"{name} {count}" for name, count in by_status.most_common())
    )
    for (resource_type, title), counts in by_check.items():
        shown = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        print(f"  {resource_type:6} {title:42} {shown}")
    for result in results:
        if result.status is Status.SKIPPED and result.reason in LEGITIMATE_SKIPS:
            print(f"  skipped, legitimately: {result.title}: {LEGITIMATE_SKIPS[result.reason]}")


def assert_conforms(target: Target) -> None:
    results = run_scim2_tester(target)
    print_summary(target, results)
    checked = {result.resource_type for result in results if result.resource_type}
    assert checked == RESOURCE_TYPES, f"resource checks ran for {checked}, not {RESOURCE_TYPES}"
    failures = [result for result in results if is_failure(result)]
    assert not failures, (
        f"{len(failures)} of {len(results)} scim2-tester checks failed ({target.mode}):\n"
        + "\n".join(describe(result) for result in failures)
    )


# --- the tests --------------------------------------------------------------------------------


def test_scim2_tester_passes_against_the_embedded_default(embedded: Target) -> None:
    assert_conforms(embedded)


def test_scim2_tester_passes_against_the_production_stack(stack: Stack) -> None:
    tenant = stack.create_tenant("conformance")
    assert tenant["base_url"] == stack.base_url
    assert_conforms(
        Target(
            "production stack (gunicorn + Celery, PostgreSQL + Redis)",
            tenant["base_url"],
            tenant["token"],
            stack.database_url,
        )
    )


def test_group_membership_is_visible_once_acknowledged(stack: Stack) -> None:
    """scim2-tester's `check_add_attribute` on `members`, without the settling and the race.

    The workers are stopped before the PATCH, so nothing is applied after it: the outcome is
    the same on every run, whatever the worker latency.
    """
    tenant = stack.create_tenant("consistency")
    with stack.client(tenant["token"]) as client:
        user = client.post(
            "/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada",
            },
        )
        group = client.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "eng",
            },
        )
        if user.status_code != 201 or group.status_code != 201:
            pytest.fail(f"setup failed: {user.text} {group.text}")
        stack.wait_until_applied(timeout=60)
        stack.kill("worker1")

        patched = client.patch(
            f"/Groups/{group.json()['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": user.json()["id"]}]}
                ],
            },
        )
        if patched.status_code not in (200, 204):
            pytest.fail(f"PATCH answered {patched.status_code}: {patched.text}")
        read = client.get(f"/Groups/{group.json()['id']}")
        if read.status_code != 200 or read.headers.get("ETag") != patched.headers.get("ETag"):
            pytest.fail(f"GET is not the version the PATCH made: {read.headers} {read.text}")

        members = [member["value"] for member in read.json().get("members", [])]
        assert members == [user.json()["id"]], (
            f"GET after an acknowledged PATCH, version {read.headers['ETag']}: {read.text}"
        )
