"""docker-compose.yml, checked by parsing it (Docker does not run here).

The stack tests run the same file's commands natively (tests/system/stack.py); these tests
check what only the file itself can get wrong.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.system.compose import COMPOSE_FILE, load_compose, service_command

SCIMFLOW_SERVICES = ("migrate", "api", "worker", "events", "beat", "flower")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose: dict[str, Any] = load_compose()["services"]
    return compose


def test_every_part_of_the_deployment_is_a_service(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", *SCIMFLOW_SERVICES} <= set(services)


def test_scimflow_services_use_postgres_and_redis(services: dict[str, Any]) -> None:
    # The PostgreSQL URL is a secret file (the header shows how it is made); Flower needs the
    # broker only. tests/unit/test_compose.py checks the secrets themselves.
    assert "postgresql+psycopg://scimflow:" in COMPOSE_FILE.read_text("utf-8")
    for name in SCIMFLOW_SERVICES:
        env = services[name]["environment"]
        if name != "flower":
            assert env["SCIMFLOW_DATABASE_URL_FILE"] == "/run/secrets/database_url", name
        assert env["SCIMFLOW_BROKER_URL"].startswith("redis://redis:6379"), name


def test_processes_start_after_the_schema_is_migrated(services: dict[str, Any]) -> None:
    assert service_command("migrate") == ["scimflow", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat", "flower"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_workers_scale(services: dict[str, Any]) -> None:
    """`--scale worker=N` needs no fixed container name and no published port."""
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert service_command("worker")[:2] == ["scimflow", "worker"]


def test_published_ports_are_loopback_only(services: dict[str, Any]) -> None:
    published = [port for svc in services.values() for port in svc.get("ports", [])]
    assert published, "the API must be reachable"
    assert all(str(port).startswith("127.0.0.1:") for port in published)


def test_flower_never_runs_without_authentication(services: dict[str, Any]) -> None:
    """Its credential is a secret file only Flower's service reads; `scimflow flower` refuses
    to start without it (tests/unit/test_compose.py runs the command without one)."""
    flower = services["flower"]
    assert "flower_basic_auth" in flower["secrets"]
    assert flower["environment"]["SCIMFLOW_FLOWER_BASIC_AUTH_FILE"] == (
        "/run/secrets/flower_basic_auth")
    assert service_command("flower")[:2] == ["scimflow", "flower"]


def test_healthchecks_gate_the_dependencies(services: dict[str, Any]) -> None:
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_pgbouncer_is_optional_and_in_transaction_mode(services: dict[str, Any]) -> None:
    pgbouncer = services["pgbouncer"]
    assert pgbouncer["profiles"] == ["pgbouncer"]
    assert pgbouncer["environment"]["POOL_MODE"] == "transaction"
