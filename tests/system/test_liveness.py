"""With no worker running, the deployment says so: `/readyz` 503 and `scimflow status` exit 1.

The API acknowledges writes whether or not anything applies them; the journal makes that
safe, but an operator must learn that nothing drains. Here the stack runs without workers,
with a stall time of two seconds: the acknowledged writes wait, readiness fails with the
reason, status warns; a worker started later drains everything and both recover.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.services import require_postgres, require_redis
from tests.system.stack import Stack, running_stack

REDIS_DB = 8  # stack.py: 9, conftest: 10, uwsgi: 11, faults: 12, poison: 14
STALL_SECONDS = 2


def status(stack: Stack) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(["scimflow", "status", "--json"], env=stack.env, capture_output=True,
                          text=True, check=False, timeout=60)
    return done.returncode, json.loads(done.stdout)


def readiness(stack: Stack) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{stack.api_port}/readyz", timeout=10)


def test_no_worker_is_reported_until_one_drains(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    with running_stack(tmp_path, workers=0, redis_db=REDIS_DB,
                       extra_env={"SCIMFLOW_STALL_SECONDS": str(STALL_SECONDS)}) as stack:
        tenant = stack.create_tenant("acme")
        with stack.client(tenant["token"]) as client:
            for index in range(5):
                created = client.post("/Users", json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": f"user{index}",
                })
                assert created.status_code == 201, created.text
        time.sleep(STALL_SECONDS + 1)

        refused = readiness(stack)
        assert refused.status_code == 503, refused.text
        assert "no worker has ever drained" in refused.json()["detail"]
        assert "Retry-After" in refused.headers
        code, report = status(stack)
        assert code == 1 and report["pipeline"]["stalled"] is True, report
        text = subprocess.run(["scimflow", "status"], env=stack.env, capture_output=True,
                              text=True, check=False, timeout=60).stdout
        assert text.startswith("WARNING: pipeline stalled"), text

        stack.start_worker("worker1")
        stack.wait_until_applied(timeout=60)
        assert readiness(stack).status_code == 200
        code, report = status(stack)
        assert code == 0 and report["pipeline"]["stalled"] is False, report
