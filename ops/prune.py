"""`scimflow prune`: delete the history past its retention now, or count it (`--dry-run`).

Beat (or the embedded worker) prunes on its own every `SCIMFLOW_RETENTION_INTERVAL_SECONDS`,
a bounded number of batches per run; this command goes on until nothing prunable is left.
Each batch commits on its own, so interrupting it loses nothing.
See docs/ARCHITECTURE.md ("Retention").
"""

from __future__ import annotations

import argparse

from scimflow.ops.output import emit
from scimflow.pipeline.ports import utc_now
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import retention
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.retention import PruneReport, RetentionPolicy

# (table, also the report's field; what of it is pruned; the policy's field for its days)
TABLES = (
    ("journal", "applied entries", "journal_days"),
    ("outbox", "events", "outbox_days"),
    ("webhook_attempts", "webhook attempts", "outbox_days"),
    ("dead_letters", "dead letters", "dead_letter_days"),
    ("login_decisions", "login decisions", "journal_days"),
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = commands.add_parser(
        "prune", help="delete journal entries, outbox events and dead letters past retention"
    )
    prune.add_argument("--dry-run", action="store_true",
                       help="count what would be deleted, delete nothing")
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    policy = RetentionPolicy.from_settings(settings)
    engine = make_engine(settings, "tool")
    try:
        report = retention.prune(make_sessions(engine), policy, now=utc_now(),
                                 dry_run=args.dry_run, max_batches=None)
    finally:
        engine.dispose()
    emit(report.as_dict(), args.json, "\n".join(report_lines(report, policy)))
    return 0


def report_lines(report: PruneReport, policy: RetentionPolicy) -> list[str]:
    """One line per table: how many rows went (or would go), and which ones."""
    verb = "would delete" if report.dry_run else "deleted"
    lines = []
    for table, rows, days_field in TABLES:
        days = getattr(policy, days_field)
        if days == 0:
            variable = f"SCIMFLOW_RETENTION_{days_field.upper()}"
            lines.append(f"{table:<16} kept forever ({variable}=0)")
        else:
            count = getattr(report, table)
            lines.append(f"{table:<16} {verb} {count} {rows} older than {days} days")
    return lines
