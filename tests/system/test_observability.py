"""The operator's view of a running stack: JSON log lines carrying one request id from the API
to the worker that applied the request, and /metrics on the API and the worker.

Real processes (tests/system/stack.py): the API under its production server, a Celery worker
with its prefork pool, beat; PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import free_port, require_postgres, require_redis
from tests.system.stack import Stack, running_stack

# A Redis database of its own (test_bench_metrics.py's too: its bench runs no stack of this
# module's, and its doorbells carry its own tenants).
REDIS_DB = 15
REQUEST_ID = "trace-4f2a9c"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def user(user_name: str) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name}


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    env = {"SCIMFLOW_LOG_FORMAT": "json", "SCIMFLOW_LOG_LEVEL": "INFO",
           "SCIMFLOW_WORKER_METRICS_PORT": str(free_port())}
    with running_stack(tmp_path_factory.mktemp("observed"), redis_db=REDIS_DB,
                       extra_env=env) as running:
        yield running


def json_lines(text: str) -> list[dict[str, Any]]:
    """The log's JSON lines (a server's own start-up lines are not ours to format)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for_line(stack: Stack, name: str, wanted: dict[str, Any],
                  timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in json_lines(stack.log(name)):
            if all(line.get(key) == value for key, value in wanted.items()):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no line with {wanted} in {name}.log:\n{stack.log(name)[-3000:]}")


def test_the_worker_logs_the_applied_entry_with_the_apis_request_id(json_stack: Stack) -> None:
    tenant = json_stack.create_tenant("observed-logs")
    with json_stack.client(tenant["token"]) as client:
        created = client.post("/Users", json=user("ada@example.com"),
                              headers={"X-Request-Id": REQUEST_ID})
    assert created.status_code == 201, created.text
    assert created.headers["X-Request-Id"] == REQUEST_ID
    user_id = created.json()["id"]

    line = wait_for_line(json_stack, "worker1", {"request_id": REQUEST_ID})

    assert line["message"].startswith("applied create User")
    assert line["level"] == "INFO" and line["logger"] == "scimflow.worker"
    assert line["tenant"] == tenant["tenant_id"]
    assert line["resource_id"] == user_id
    assert isinstance(line["task_id"], str) and line["task_id"]
    assert line["latency_ms"] >= 0
    assert line["time"].endswith("+00:00")


def test_the_api_and_the_worker_serve_their_metrics(json_stack: Stack) -> None:
    tenant = json_stack.create_tenant("observed-metrics")
    with json_stack.client(tenant["token"]) as client:
        created = client.post("/Users", json=user("grace@example.com"))
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        deactivated = client.patch(f"/Users/{user_id}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
        assert deactivated.status_code in (200, 204), deactivated.text
    json_stack.wait_until_applied()

    api = samples(f"http://127.0.0.1:{json_stack.api_port}/metrics")
    posted = ("scimflow_http_requests_total",
              (("method", "POST"), ("resource_type", "Users"), ("status", "201")))
    assert api[posted] >= 1
    assert api[("scimflow_ack_latency_seconds_count",
                (("method", "POST"), ("resource_type", "Users")))] >= 1
    # Read at scrape time from the database: nothing pending for the tenant any more.
    assert ("scimflow_backlog", (("tenant", "observed-metrics"),)) not in api

    port = int(json_stack.env["SCIMFLOW_WORKER_METRICS_PORT"])
    worker = _eventually(lambda: samples(f"http://127.0.0.1:{port}/metrics"),
                         lambda figures: figures.get(("scimflow_applied_commands_total", (
                             ("kind", "patch"), ("resource_type", "User")))) is not None)
    assert worker[("scimflow_applied_commands_total",
                   (("kind", "create"), ("resource_type", "User")))] >= 1
    assert worker[("scimflow_deprovision_latency_seconds_count", ())] >= 1
    assert worker[("scimflow_batch_size_count", ())] >= 1


def test_the_backlog_is_read_per_tenant_at_scrape_time(json_stack: Stack, tmp_path: Path) -> None:
    """Without workers, the acknowledged write stays pending and /metrics shows it."""
    require_postgres()
    require_redis()
    # The broker of the module's stack, not flushed: a doorbell its worker takes drains its own
    # database, and nothing of this stack's.
    with running_stack(tmp_path, workers=0, broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
                       extra_env={"SCIMFLOW_SWEEP_INTERVAL_SECONDS": "3600"}) as stack:
        tenant = stack.create_tenant("observed-backlog")
        with stack.client(tenant["token"]) as client:
            assert client.post("/Users", json=user("lin@example.com")).status_code == 201
        time.sleep(1.1)
        api = samples(f"http://127.0.0.1:{stack.api_port}/metrics")

    assert api[("scimflow_backlog", (("tenant", "observed-backlog"),))] == 1
    assert api[("scimflow_oldest_pending_seconds", (("tenant", "observed-backlog"),))] >= 1.0


def _eventually(read: Any, ready: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not ready(value) and time.monotonic() < deadline:
        time.sleep(0.3)
        value = read()
    return value
