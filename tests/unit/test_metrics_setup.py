"""Prometheus's multiprocess set-up of the production processes (ops/processes.py, the gunicorn
hook) and the workers' figures of a drain batch (workers/metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from scimflow.api.gunicorn_hooks import child_exit
from scimflow.ops.processes import GUNICORN_HOOKS, api_argv, metrics_environment
from scimflow.pipeline.services.delivery import DeliveryReport
from scimflow.pipeline.services.drain import AppliedEntry, DrainReport
from scimflow.pipeline.settings import ApiServer, Settings
from scimflow.workers.metrics import record_batch, record_delivery, start_metrics_server


def test_a_configured_directory_gets_a_folder_per_role_emptied_of_stale_files(
    tmp_path: Path,
) -> None:
    settings = Settings(metrics_dir=str(tmp_path))
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "counter_123.db").write_bytes(b"old")
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "counter_456.db").write_bytes(b"the worker's")

    env = metrics_environment(settings, "api")

    assert env == {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "api")}
    assert list((tmp_path / "api").iterdir()) == []
    # Another role's files are not this role's to clear.
    assert (tmp_path / "worker" / "counter_456.db").exists()


def test_without_a_directory_each_start_gets_a_private_one() -> None:
    first = Path(metrics_environment(Settings(), "worker")["PROMETHEUS_MULTIPROC_DIR"])
    second = Path(metrics_environment(Settings(), "worker")["PROMETHEUS_MULTIPROC_DIR"])
    try:
        assert first != second and first.is_dir() and second.is_dir()
    finally:
        first.rmdir()
        second.rmdir()


def test_gunicorn_is_given_the_hook_that_marks_finished_processes() -> None:
    argv = api_argv(Settings(api_server=ApiServer.GUNICORN), "127.0.0.1:8000", 2)
    assert argv[argv.index("--config") + 1] == GUNICORN_HOOKS


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_counts_its_applied_entries_dead_letters_and_deprovisions() -> None:
    acknowledged = datetime(2026, 1, 1, tzinfo=UTC)

    def entry(kind: str, deprovisions: bool) -> AppliedEntry:
        return AppliedEntry(seq=1, tenant_id="t", resource_id="u", resource_type="User",
                            kind=kind, request_id="r", acknowledged_at=acknowledged,
                            applied_at=acknowledged + timedelta(seconds=2),
                            deprovisions=deprovisions)

    before = (sample("scimflow_applied_commands_total", resource_type="User", kind="create"),
              sample("scimflow_dead_letters_total"),
              sample("scimflow_deprovision_latency_seconds_count"),
              sample("scimflow_deprovision_latency_seconds_sum"),
              sample("scimflow_batch_size_count"))

    record_batch(DrainReport(resources=3, applied=3, dead=1, applied_entries=[
        entry("create", False), entry("create", False), entry("patch", True)]))
    record_batch(DrainReport())  # nothing claimed: no batch

    assert sample("scimflow_applied_commands_total", resource_type="User",
                  kind="create") == before[0] + 2
    assert sample("scimflow_dead_letters_total") == before[1] + 1
    assert sample("scimflow_deprovision_latency_seconds_count") == before[2] + 1
    assert sample("scimflow_deprovision_latency_seconds_sum") == before[3] + 2.0
    assert sample("scimflow_batch_size_count") == before[4] + 1


def test_deliveries_are_counted_by_outcome() -> None:
    delivered = sample("scimflow_webhook_deliveries_total", outcome="delivered")
    failed = sample("scimflow_webhook_deliveries_total", outcome="failed")
    record_delivery(DeliveryReport(delivered=5, failed=2))
    assert sample("scimflow_webhook_deliveries_total", outcome="delivered") == delivered + 5
    assert sample("scimflow_webhook_deliveries_total", outcome="failed") == failed + 2


def test_port_zero_serves_no_metrics() -> None:
    assert start_metrics_server(0) is False


def test_a_finished_gunicorn_process_has_its_live_gauges_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")
    (tmp_path / "gauge_livesum_4343.db").write_bytes(b"")

    child_exit(None, SimpleNamespace(pid=4242))

    # Its counters still count; another process's gauges are untouched.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db",
                                                          "gauge_livesum_4343.db"]
