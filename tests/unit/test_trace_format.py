"""`scimflow trace` output, formatted from hand-built read-model values."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime

import pytest

from scimflow.ops.output import emit
from scimflow.ops.trace import format_trace
from scimflow.pipeline.services.operations import (
    DirectoryRow,
    EventLine,
    HistoryLine,
    LoginLine,
    ResourceTrace,
    TenantOverview,
)

AT = datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)
LATER = datetime(2026, 3, 1, 9, 30, 7, tzinfo=UTC)

TENANT = TenantOverview(
    tenant_id="t-1", name="acme", disabled=False, backlog=1, oldest_pending_seconds=2.0,
    drain_rate=0.0, dead_letters=1, deprovision_p50_seconds=None, deprovision_p99_seconds=None,
    last_write_at=LATER, last_applied_at=AT, idp_dialect="Okta", refused_last_hour=0)
ALICE = DirectoryRow(
    resource_id="u-1", resource_type="User", name="alice@example.com", external_id="00u1",
    emails=("alice@example.com",), status="waiting", source="scim", last_write_at=LATER,
    last_applied_at=AT, memberships=("admins", "engineering"))
CREATED = HistoryLine(
    seq=41, request_id="req-created", summary="created", status="applied", acknowledged_at=AT,
    applied_at=AT, attempts=1, waited_for=(), last_error=None, dead_letter_id=None,
    dead_letter_reason=None, dead_letter_settled=False)
WAITING = HistoryLine(
    seq=42, request_id="req-waiting", summary="added 2 members", status="waiting",
    acknowledged_at=LATER, applied_at=None, attempts=3, waited_for=("g-7", "g-8"),
    last_error="group g-7 not applied yet", dead_letter_id=None, dead_letter_reason=None,
    dead_letter_settled=False)
DEAD = replace(WAITING, seq=43, request_id="req-dead", summary="set active to false",
               status="dead-lettered", waited_for=(), dead_letter_id=9,
               dead_letter_reason="schema violation: active")
EVENT = EventLine(event_id="evt_1", type="user.created", occurred_at=AT,
                  delivery="delivered to 2 endpoints")
LOGIN = LoginLine(decided_at=LATER, issuer="https://idp.example.com", subject="sub-1",
                  decision="refused", reason="user inactive", action="none")
TRACE = ResourceTrace(tenant=TENANT, resource=ALICE, history=(CREATED, WAITING, DEAD),
                      events=(EVENT,), logins=(LOGIN,))


def _section(text: str, title: str) -> list[str]:
    block = next(b for b in text.split("\n\n") if b.startswith(f"{title}:\n"))
    return block.splitlines()[1:]


def test_the_header_names_the_resource_its_state_and_memberships() -> None:
    header = format_trace(TRACE).split("\n\n")[0].splitlines()

    assert header == [
        "resource:     User alice@example.com (u-1)",
        "tenant:       acme (t-1)",
        "external id:  00u1",
        "status:       waiting",
        "source:       scim",
        "last write:   2026-03-01 09:30:07",
        "last applied: 2026-03-01 09:30:05",
        "memberships:  admins, engineering",
    ]


def test_history_shows_each_write_when_it_applied_what_it_waited_for_and_why_it_died() -> None:
    rows = _section(format_trace(TRACE), "history")

    assert rows[0].split() == ["SEQ", "REQUEST", "ID", "OPERATION", "ACKNOWLEDGED", "APPLIED",
                               "ATTEMPTS", "WAITED", "FOR", "DEAD", "LETTER"]
    assert rows[1].split() == ["41", "req-created", "created", "2026-03-01", "09:30:05",
                               "2026-03-01", "09:30:05", "1", "-", "-"]
    assert rows[2].split()[0] == "42"
    assert "added 2 members" in rows[2] and "g-7, g-8" in rows[2]
    assert " waiting " in rows[2]  # not applied: its state stands in for the time
    assert rows[2].endswith("last error: group g-7 not applied yet")
    assert rows[3].endswith("#9: schema violation: active")
    assert "set active to false" in rows[3]


def test_a_settled_dead_letter_says_so() -> None:
    settled = replace(TRACE, history=(replace(DEAD, dead_letter_settled=True),))

    assert _section(format_trace(settled), "history")[1].endswith(
        "#9, settled: schema violation: active")


def test_events_and_login_decisions_follow_the_history() -> None:
    text = format_trace(TRACE)

    assert _section(text, "events")[1].split() == [
        "evt_1", "user.created", "2026-03-01", "09:30:05", "delivered", "to", "2", "endpoints"]
    assert _section(text, "login decisions")[1].split() == [
        "2026-03-01", "09:30:07", "https://idp.example.com", "sub-1", "refused", "user",
        "inactive", "none"]


def test_empty_sections_say_so_and_a_resource_without_groups_says_none() -> None:
    bare = replace(TRACE, resource=replace(ALICE, memberships=(), external_id=None),
                   history=(), events=(), logins=())
    text = format_trace(bare)

    assert _section(text, "history") == ["(no history)"]
    assert _section(text, "events") == ["(no events)"]
    assert _section(text, "login decisions") == ["(no login decisions)"]
    assert "memberships:  (none)" in text and "external id:  -" in text


def test_json_is_the_whole_trace_with_iso_times(capsys: pytest.CaptureFixture[str]) -> None:
    emit(asdict(TRACE), True, "")
    found = json.loads(capsys.readouterr().out)

    assert found["resource"]["resource_id"] == "u-1"
    assert [h["seq"] for h in found["history"]] == [41, 42, 43]
    assert found["history"][1]["waited_for"] == ["g-7", "g-8"]
    assert found["history"][0]["applied_at"] == "2026-03-01T09:30:05+00:00"
    assert found["logins"][0]["decision"] == "refused"
