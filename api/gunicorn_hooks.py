"""gunicorn's server hooks for the API (`--config python:scimflow.api.gunicorn_hooks`): a
finished worker process's live Prometheus gauges are forgotten (prometheus-client's
multiprocess mode); its counters stay summed in the files it left.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
