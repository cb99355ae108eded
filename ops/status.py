"""`scimflow status`: is the pipeline moving, and each tenant's backlog, lag and failures.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from scimflow.ops.table import render
from scimflow.ops.tenant_figures import tenant_status
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.services.liveness import Liveness, assess
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions, unit_of_work

COLUMNS = (
    ("TENANT", "tenant"),
    ("BACKLOG", "backlog"),
    ("OLDEST PENDING S", "oldest_pending_seconds"),
    ("APPLIED/S", "drain_rate"),
    ("RETRYING", "retrying"),
    ("DEAD LETTERS", "dead_letters"),
    ("DEPROVISION P50 S", "deprovision_p50_seconds"),
    ("DEPROVISION P99 S", "deprovision_p99_seconds"),
    ("IDP", "idp_dialect"),
    ("429 LAST HOUR", "refused_last_hour"),
)


def status(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the pipeline moves, 1 when work waits and no worker drains it."""
    engine = make_engine(settings, "tool")
    try:
        with unit_of_work(make_sessions(engine)) as session:
            now = utc_now()
            tenants = tenant_status(session, now=now)
            liveness = assess(session, now=now, stall_seconds=settings.stall_seconds)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"pipeline": liveness.as_dict(), "tenants": tenants}, indent=2,
                         default=_json_value))
    else:
        print("\n".join(pipeline_lines(liveness, settings)))
        print(render([h for h, _ in COLUMNS], _tenant_rows(tenants)) if tenants
              else "(no tenants)")
    return 1 if liveness.stalled else 0


def pipeline_lines(liveness: Liveness, settings: Settings) -> list[str]:
    lines = [f"WARNING: {liveness.describe()}" if liveness.stalled else
             f"pipeline: nothing waiting too long (last drain {_ago(liveness.last_drain_seconds)}"
             + ("" if settings.embedded else f", last sweep {_ago(liveness.last_sweep_seconds)}")
             + ")"]
    # The embedded worker has no sweeper (it looks again every few seconds by itself).
    sweep_late = 3 * settings.sweep_interval_seconds
    last_sweep = liveness.last_sweep_seconds
    if not settings.embedded and (last_sweep is None or last_sweep > sweep_late):
        lines.append(f"WARNING: the sweeper last ran {_ago(last_sweep)}: is `scimflow beat` "
                     "running? (lost doorbells are only re-rung by it)")
    return lines


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f} s ago"


def _tenant_rows(tenants: list[dict[str, Any]]) -> list[list[Any]]:
    return [[row[key] for _, key in COLUMNS] for row in tenants]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
