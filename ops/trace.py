"""`scimflow trace TENANT RESOURCE`: one resource's history, the events it raised and the login
decisions about it, as the read model of the operator view reports them.

An unknown tenant or resource is NotFound, which the CLI prints as one line with exit code 1.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from scimflow.ops.output import emit, moment
from scimflow.ops.table import render
from scimflow.pipeline.services.operations import (
    DirectoryRow,
    EventLine,
    HistoryLine,
    LoginLine,
    Operations,
    ResourceTrace,
)
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions

HISTORY_HEADERS = ("SEQ", "REQUEST ID", "OPERATION", "ACKNOWLEDGED", "APPLIED", "ATTEMPTS",
                   "WAITED FOR", "DEAD LETTER")
EVENT_HEADERS = ("EVENT", "TYPE", "OCCURRED", "DELIVERY")
LOGIN_HEADERS = ("DECIDED", "ISSUER", "SUBJECT", "DECISION", "REASON", "ACTION")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trace = commands.add_parser(
        "trace", help="a resource's history: each write, when it applied, what it waited for"
    )
    trace.add_argument("tenant", help="tenant name or id")
    trace.add_argument("resource", help="resource id, userName, externalId or displayName")
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(handler=trace_command)


def trace_command(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings, "tool")
    try:
        found = Operations(make_sessions(engine), _ReadOnly()).trace(args.tenant, args.resource)
    finally:
        engine.dispose()
    emit(asdict(found), args.json, format_trace(found))
    return 0


class _ReadOnly:
    """The dispatcher of a command that only reads: tracing never rings a worker."""

    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        raise RuntimeError(f"`scimflow trace` does not ring workers (tenant {tenant_id})")


def format_trace(found: ResourceTrace) -> str:
    """The header, then the history, events and login decisions, each under its own title."""
    sections = [
        "\n".join(header_lines(found)),
        _section("history", HISTORY_HEADERS, [history_row(line) for line in found.history]),
        _section("events", EVENT_HEADERS, [event_row(line) for line in found.events]),
        _section("login decisions", LOGIN_HEADERS, [login_row(line) for line in found.logins]),
    ]
    return "\n\n".join(sections)


def header_lines(found: ResourceTrace) -> list[str]:
    resource = found.resource
    fields = [
        ("resource", f"{resource.resource_type} {resource.name} ({resource.resource_id})"),
        ("tenant", f"{found.tenant.name} ({found.tenant.tenant_id})"),
        ("external id", resource.external_id or "-"),
        ("status", resource.status),
        ("source", resource.source),
        ("last write", moment(resource.last_write_at)),
        ("last applied", moment(resource.last_applied_at)),
        ("memberships", _memberships(resource)),
    ]
    width = max(len(label) for label, _ in fields) + 1
    return [f"{label + ':':<{width}} {value}" for label, value in fields]


def _memberships(resource: DirectoryRow) -> str:
    return ", ".join(resource.memberships) if resource.memberships else "(none)"


def history_row(line: HistoryLine) -> tuple[object, ...]:
    return (line.seq, line.request_id, line.summary, moment(line.acknowledged_at),
            _applied(line), line.attempts, ", ".join(line.waited_for) or None,
            _dead_letter(line))


def _applied(line: HistoryLine) -> str:
    """When it applied; otherwise its state, so a pending write does not read as lost."""
    return moment(line.applied_at) if line.applied_at is not None else line.status


def _dead_letter(line: HistoryLine) -> str | None:
    if line.dead_letter_id is None:
        return None if line.last_error is None else f"last error: {line.last_error}"
    reason = line.dead_letter_reason or "no reason recorded"
    settled = ", settled" if line.dead_letter_settled else ""
    return f"#{line.dead_letter_id}{settled}: {reason}"


def event_row(line: EventLine) -> tuple[object, ...]:
    return (line.event_id, line.type, moment(line.occurred_at), line.delivery)


def login_row(line: LoginLine) -> tuple[object, ...]:
    return (moment(line.decided_at), line.issuer, line.subject, line.decision, line.reason,
            line.action)


def _section(title: str, headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    return f"{title}:\n" + (render(headers, rows) if rows else f"(no {title})")
