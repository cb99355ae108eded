"""`scimflow bench` end to end, small: the whole stack runs and every figure is in the JSON.

Figures themselves are not asserted (the machine is shared); their presence, their internal
consistency and the correctness checks the benchmark makes of the directory it built and of the
events its webhook receiver got are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.support.services import POSTGRES_URL, require_postgres, require_redis

SCIMFLOW = str(Path(sys.executable).parent / "scimflow")
REDIS_DB = 3


def run_bench(*options: str) -> dict[str, Any]:
    require_postgres()
    require_redis()
    admin = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
    finished = subprocess.run(
        [SCIMFLOW, "bench", "--json", "--admin-database-url", admin,
         "--broker-url", f"redis://127.0.0.1:6379/{REDIS_DB}", *options],
        capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    summary: dict[str, Any] = json.loads(finished.stdout)
    return summary


def assert_rss_sampled(rss: dict[str, Any], api_processes: int, workers: int) -> None:
    assert rss["samples"] >= 1
    # The server's master and its processes; Celery's main process and its pool.
    assert rss["roles"]["api"]["processes"] >= api_processes + 1
    assert rss["roles"]["worker"]["processes"] >= workers + 1
    for figures in rss["roles"].values():
        assert 0 < figures["peak_process_mib"] <= figures["peak_total_mib"]
    assert all(p["peak_mib"] > 0 for p in rss["processes"])


def assert_caught_up_during_sync(webhooks: dict[str, Any], users: int) -> None:
    caught_up = webhooks["catch_up_during_sync"]
    outbox_events = webhooks["delivery"]["outbox_events"]
    # A second endpoint, enabled once half the users were applied: every event reached it
    # too, signed with its own secret, and none of its deliveries counts for the first one.
    assert caught_up["endpoint"] != webhooks["endpoint"]
    assert caught_up["all_arrived"] is True and caught_up["missing"] == 0
    assert caught_up["bad_signatures"] == 0 and caught_up["unparsable"] == 0
    assert caught_up["received"] == outbox_events + caught_up["repeats"]
    assert (caught_up["users_acknowledged_at_enable"] >= caught_up["users_applied_at_enable"]
            >= users // 2)
    # Its catch-up covers the backlog it was enabled on, and no more than the outbox.
    assert 0 < caught_up["backlog_events"] <= caught_up["events"] <= outbox_events
    assert caught_up["per_s"] > 0 or caught_up["events"] == 1
    assert caught_up["first_arrival_after_enable_s"] is not None
    assert set(caught_up["sync_during"]) == {"users_acked", "journal_entries_applied",
                                             "events_written", "requests_running_share"}
    assert caught_up["cpu"]["roles"]


def assert_webhooks_delivered(summary: dict[str, Any], deactivations: int) -> None:
    webhooks = summary["webhooks"]
    delivery = webhooks["delivery"]
    # Every event the tenant's outbox holds reached the receiver, signed with the secret.
    assert delivery["all_arrived"] is True and delivery["missing"] == 0
    assert delivery["bad_signatures"] == 0 and delivery["unparsable"] == 0
    assert delivery["events"] == delivery["outbox_events"] > 0
    assert delivery["received"] == delivery["events"] + delivery["repeats"]
    assert delivery["per_s"] > 0
    for section in ("deprovision_to_webhook", "deprovision_applied_to_webhook"):
        latency = webhooks[section]
        assert latency["count"] == latency["deactivations"] == deactivations
        assert latency["p50_s"] <= latency["p99_s"] <= latency["max_s"]
    # An event is sent once its change is applied, never before.
    assert webhooks["deprovision_applied_to_webhook"]["p50_s"] > 0
    capacity = webhooks["receiver_capacity"]
    assert capacity["per_s"] > 0
    assert webhooks["throughput_vs_receiver_capacity"] == round(
        delivery["per_s"] / capacity["per_s"], 3)
    replay = webhooks["backlog_replay"]
    assert replay["events"] == delivery["outbox_events"] and replay["per_s"] > 0
    assert webhooks["knobs"]["events_threads"] == 4
    assert {"api", "worker", "events", "receiver", "postgres"} <= set(summary["cpu"]["roles"])
    assert summary["correctness"]["webhooks_all_arrived"] is True
    assert summary["correctness"]["webhooks_catch_up_all_arrived"] is True


def assert_existence_phase(summary: dict[str, Any], requests: int) -> None:
    existence, baselines = summary["existence"], summary["baselines"]
    assert existence["requests"] == requests
    assert (existence["existing"], existence["missing"]) == (requests // 2, requests // 2)
    assert existence["wrong_answers"] == 0
    assert existence["per_s"] > 0
    assert existence["p50_ms"] <= existence["p99_ms"]
    assert baselines["bare_falcon_get_per_s"] > 0
    assert baselines["existence_vs_bare_falcon_get"] == round(
        existence["per_s"] / baselines["bare_falcon_get_per_s"], 3)


def assert_sessions_checked(summary: dict[str, Any], deactivations: int, checks: int) -> None:
    revoked, check = summary["sessions"]["deprovision_to_revoked"], summary["sessions"]["check"]
    # Every deactivated user's session, registered through the application API, read revoked.
    assert revoked["registered"] == revoked["count"] == revoked["deactivations"] == deactivations
    assert revoked["failure_count"] == 0
    assert 0 <= revoked["p50_s"] <= revoked["p99_s"] <= revoked["max_s"]
    # Every check of an active user's session answered 200 active.
    assert check["requests"] == checks and check["wrong_answers"] == 0
    assert check["per_s"] > 0 and check["p50_ms"] <= check["p99_ms"]
    assert check["register_failures"] == 0 and check["sessions"] > 0
    one_at_a_time = check["one_at_a_time"]  # the first checks again, on one connection
    assert one_at_a_time["requests"] == checks and one_at_a_time["per_s"] > 0
    baselines = summary["baselines"]
    assert baselines["session_check_vs_bare_falcon_get"] == round(
        check["per_s"] / baselines["bare_falcon_session_get_per_s"], 3)
    assert summary["correctness"]["session_revocations_missed"] == 0
    assert summary["correctness"]["session_check_wrong_answers"] == 0


@pytest.mark.timeout(700)
def test_an_okta_bench_pushes_passwords_and_reports_look_ups_memory_and_webhooks() -> None:
    summary = run_bench("--users", "200", "--groups", "2", "--members", "5",
                        "--deactivations", "4", "--baseline-requests", "200",
                        "--existence-requests", "400", "--session-checks", "600")

    assert summary["plan"]["idp"] == "okta" and summary["plan"]["passwords"] is True
    checks = summary["correctness"]
    assert checks["ok"] is True
    assert checks["users_with_password"] == 200  # every create carried one, and it was stored
    gets = summary["sync_requests"]["existence_get"]
    assert gets["requests"] == 200 and gets["per_s"] > 0
    assert gets["p50_ms"] <= gets["p99_ms"]
    assert summary["sync_requests"]["by_kind"]["existence GET"]["requests"] == 200
    assert summary["ack"]["requests"] == 200
    assert summary["baselines"]["ack_vs_bare_falcon"] is not None
    assert_existence_phase(summary, 400)
    assert_rss_sampled(summary["rss"], api_processes=2, workers=2)
    assert_webhooks_delivered(summary, deactivations=4)
    assert_caught_up_during_sync(summary["webhooks"], users=200)
    assert_sessions_checked(summary, deactivations=4, checks=600)


@pytest.mark.timeout(700)
def test_an_entra_bench_without_groups_webhooks_sessions_or_acknowledgement_phase() -> None:
    summary = run_bench("--idp", "entra", "--phases", "sync,existence", "--users", "150",
                        "--groups", "0", "--deactivations", "3", "--existence-requests", "200",
                        "--no-webhooks", "--no-sessions")

    assert summary["plan"]["idp"] == "entra" and summary["plan"]["passwords"] is False
    assert summary["plan"]["webhooks"] is False and "webhooks" not in summary
    assert summary["plan"]["sessions"] is False and "sessions" not in summary
    assert "bare_falcon_session_get_per_s" not in summary["baselines"]
    assert "events" not in summary["cpu"]["roles"]
    assert "ack" not in summary and "bare_falcon_post_per_s" not in summary["baselines"]
    checks = summary["correctness"]
    assert checks["ok"] is True
    assert checks["users_with_manager"] == 150 - 10  # users 0-9 have none
    assert (checks["groups"], checks["inactive_users"]) == (0, 3)
    kinds = summary["sync_requests"]["by_kind"]
    assert "POST /Groups" not in kinds
    assert kinds["deactivate PATCH"]["requests"] == 3
    assert_existence_phase(summary, 200)
    assert_rss_sampled(summary["rss"], api_processes=2, workers=2)
