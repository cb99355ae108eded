"""What /metrics says during `scimflow bench` agrees with what the benchmark counted itself.

The benchmark scrapes the API's and the workers' /metrics once the sync has converged; the
API's request counters must equal the requests the load generator sent and the 429s it got
back (admission control forced by a tiny in-flight limit), and the workers' applied-commands
counter the users the journal holds applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.support.services import POSTGRES_URL, require_postgres, require_redis

SCIMFLOW = str(Path(sys.executable).parent / "scimflow")
# Not test_bench.py's database (3): the two may run at once.
REDIS_DB = 15
USERS = 300


def run_small_bench() -> dict[str, Any]:
    require_postgres()
    require_redis()
    admin = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
    finished = subprocess.run(
        [SCIMFLOW, "bench", "--json", "--admin-database-url", admin,
         "--broker-url", f"redis://127.0.0.1:6379/{REDIS_DB}", "--phases", "sync",
         "--users", str(USERS), "--groups", "2", "--members", "5", "--deactivations", "10",
         "--no-webhooks", "--no-sessions", "--workers", "1", "--concurrency", "16",
         "--set", "tenant_in_flight_limit=2"],
        capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    summary: dict[str, Any] = json.loads(finished.stdout)
    return summary


def test_scraped_metrics_agree_with_the_benchmarks_own_counts() -> None:
    summary = run_small_bench()
    metrics, sync = summary["metrics"], summary["sync_requests"]

    # Forced refusals happened, and nothing failed: the comparison is about something.
    assert metrics["bench"]["throttled_429"] > 0
    assert summary["correctness"]["ok"] is True
    # The API's own count against what the load generator tallied it received answers to.
    assert metrics["api"]["scim_requests"] == sync["requests"]
    assert metrics["api"]["throttled_429"] == metrics["bench"]["throttled_429"]
    assert metrics["workers"]["user_creates_applied"] == summary["apply"]["users"] == USERS
    assert metrics["workers"]["dead_letters"] == 0
    # Each deactivation sent was observed once by the deprovision latency histogram (a 429'd
    # one was never journaled; its retry is the one entry).
    assert metrics["workers"]["deprovisions_observed"] == 10
    assert metrics["agrees"] is True
