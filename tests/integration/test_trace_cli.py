"""`scimflow trace TENANT RESOURCE` on SQLite and PostgreSQL: a resource's history in words with
its request ids, what a membership waited for and why it was dead-lettered, the events it
raised; `--json`; and an unknown tenant or resource as one line with exit code 1.

Each command runs in-process through `scimflow.ops.cli.main`, exactly as the console script does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.drain import Drainer, RetryPolicy
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import Services
from tests.integration.test_drain import FAR_FUTURE, ManualClock, add_members, make_not_due
from tests.support.cli import Cli

RETRY = RetryPolicy(base_seconds=1, max_seconds=4, limit=2)



@pytest.fixture
def acme(services: Services) -> TenantRef:
    return services.tenant("acme")


def _section(out: str, title: str) -> list[str]:
    block = next(b for b in out.split("\n\n") if b.startswith(f"{title}:\n"))
    return block.splitlines()[1:]


def _deactivate(services: Services, tenant: TenantRef, user_id: str) -> None:
    body = patch_body({"op": "replace", "value": {"active": False}})
    services.writes.patch(tenant, "User", user_id, body, if_match=None, request_id="req-off")


def test_trace_prints_the_header_then_each_write_in_words(
    cli: Cli, services: Services, acme: TenantRef
) -> None:
    ann = services.user(acme, "ann")
    services.group(acme, "staff", [ann])
    services.drain()
    _deactivate(services, acme, ann)
    services.drain()

    code, out, err = cli("trace", "acme", "ann")

    assert (code, err) == (0, "")
    header = out.split("\n\n")[0].splitlines()
    assert header[0].split() == ["resource:", "User", "ann", f"({ann})"]
    assert header[1].split() == ["tenant:", "acme", f"({acme.id})"]
    assert "status:       inactive" in header and "memberships:  staff" in header
    history = _section(out, "history")
    assert history[0].split()[:3] == ["SEQ", "REQUEST", "ID"]
    assert "created" in history[1] and "test" in history[1].split()
    assert "set active=false" in history[2] and "req-off" in history[2].split()
    assert len(history) == 3
    events = _section(out, "events")
    assert events[0].split() == ["EVENT", "TYPE", "OCCURRED", "DELIVERY"]
    assert any("no endpoint" in line for line in events[1:])
    assert _section(out, "login decisions") == ["(no login decisions)"]


def test_trace_finds_a_resource_by_id_and_prints_json(
    cli: Cli, services: Services, acme: TenantRef
) -> None:
    ann = services.user(acme, "ann")
    services.drain()
    _deactivate(services, acme, ann)  # acknowledged, not applied yet

    code, out, err = cli("trace", acme.id, ann, "--json")

    assert (code, err) == (0, "")
    found: dict[str, Any] = json.loads(out)
    assert found["resource"]["resource_id"] == ann and found["tenant"]["name"] == "acme"
    assert [line["summary"] for line in found["history"]] == ["created", "set active=false"]
    assert found["history"][0]["applied_at"] is not None
    assert found["history"][1]["applied_at"] is None
    assert found["history"][1]["request_id"] == "req-off"


def test_a_dead_lettered_membership_shows_what_it_waited_for_and_why(
    cli: Cli, services: Services, acme: TenantRef
) -> None:
    clock = ManualClock()
    worker = Drainer(services.sessions, default_protocol(), retry=RETRY, clock=clock)
    group = services.group(acme, "waiters")
    worker.drain()
    ghost = services.user(acme, "ghost")
    make_not_due(services, ghost, FAR_FUTURE)  # its create never lands in time
    add_members(services, acme, group, [ghost])
    for _ in range(RETRY.limit + 1):
        worker.drain()
        clock.advance(60)

    code, out, err = cli("trace", "acme", "waiters")

    assert (code, err) == (0, "")
    assert "status:       dead-lettered" in out
    waited = _section(out, "history")[2]
    assert "added 1 member" in waited and ghost in waited
    assert " dead " in waited  # its state stands where the time it applied would be
    assert re.search(rf"  #\d+: waiting for members: {ghost}$", waited), waited


@pytest.mark.parametrize(("argv", "message"), [
    (("nobody", "ann"), "error: No tenant 'nobody'."),
    (("acme", "nobody"), "error: No user or group 'nobody' in tenant acme."),
])
def test_an_unknown_tenant_or_resource_is_one_line_and_exit_1(
    cli: Cli, services: Services, acme: TenantRef, argv: tuple[str, str], message: str
) -> None:
    services.user(acme, "ann")

    code, out, err = cli("trace", *argv)

    assert (code, out) == (1, "")
    assert err == message + "\n"
