"""The operator console in a real browser (Debian's chromium through Playwright), against the
production processes of docker-compose.yml on PostgreSQL: the API, one Celery worker, beat and
`scimflow console` (its own Redis database, 3).

An operator signs in, opens a tenant after a small SCIM sync, finds a user by userName, reads
its history with acknowledged and applied times, and replays a dead letter (a group waiting for
a member that could not apply in time) and sees it apply. A wrong password, a POST without the
CSRF token and a tenant's SCIM token are refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store.db import make_engine, make_sessions
from scimflow.pipeline.store.models import JournalEntry
from tests.support.services import free_port, require_postgres, require_redis, unavailable
from tests.system.compose import service_command, with_option
from tests.system.stack import Stack, running_stack, wait_until_serving

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
REDIS_DB = 3  # no other test uses it
OPERATOR, PASSWORD = "ops-lead", "a long console password"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# A group entry waiting for a member is retried twice, 0.2 s then 0.4 s apart, then dead. The
# session cookie keeps its production default, Secure: chromium sends it to http://127.0.0.1.
STACK_ENV = {
    "SCIMFLOW_REFERENCE_RETRY_LIMIT": "2",
    "SCIMFLOW_RETRY_BASE_SECONDS": "0.2",
    "SCIMFLOW_RETRY_MAX_SECONDS": "1",
}
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def require_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (the test extra)")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing (`make install` installs Debian's chromium)")
    return sync_playwright


@dataclass
class World:
    stack: Stack
    console_url: str
    tenant: str
    token: str
    users: dict[str, str]
    group: str
    ghost: str

    def scim(self) -> httpx.Client:
        return self.stack.client(self.token)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def set_not_before(stack: Stack, resource_id: str, when: datetime | None) -> None:
    """When a resource's pending entries become due (None: now): how a member that cannot
    apply in time is made, as tests/integration/test_operations.py makes one."""
    engine = make_engine(Settings(database_url=stack.database_url), "tool")
    try:
        with make_sessions(engine).begin() as session:
            session.execute(update(JournalEntry).where(
                JournalEntry.resource_id == resource_id, JournalEntry.status == "pending"
            ).values(not_before=when))
    finally:
        engine.dispose()


def create_operator(stack: Stack) -> None:
    """`scimflow operator create`, the password on standard input."""
    done = subprocess.run(["scimflow", "operator", "create", OPERATOR, "--password-stdin"],
                          input=f"{PASSWORD}\n".encode(), env=stack.env, cwd=stack.workdir,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def provision(stack: Stack) -> World:
    """Three users and a group over SCIM, and a member the group waits for in vain: acknowledged
    while no worker runs, so the member's create is made not due before any worker sees it."""
    tenant = stack.create_tenant("console-acme")
    world = World(stack, "", "console-acme", tenant["token"], {}, "", "")
    with world.scim() as scim:
        for name in ("alice", "bob", "carol"):
            world.users[name] = created(scim.post("/Users", json={
                "schemas": [USER_SCHEMA], "userName": f"{name}@acme.test",
                "externalId": f"ext-{name}", "emails": [{"value": f"{name}@acme.test"}],
            }))
        world.group = created(scim.post("/Groups", json={
            "schemas": [GROUP_SCHEMA], "displayName": "staff",
            "members": [{"value": world.users["alice"]}, {"value": world.users["bob"]}],
        }))
        world.ghost = created(scim.post("/Users", json={
            "schemas": [USER_SCHEMA], "userName": "ghost@acme.test"}))
        set_not_before(stack, world.ghost, FAR_FUTURE)
        answer = scim.patch(f"/Groups/{world.group}", json={
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": world.ghost}]}],
        })
        assert answer.status_code in (200, 204), answer.text
    return world


def dead_letters(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM dead_letters")[0][0])


def members_of(stack: Stack, group: str) -> set[str]:
    rows = stack.sql("SELECT member_id FROM memberships WHERE group_id = :g", g=group)
    return {str(row[0]) for row in rows}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_postgres()
    require_redis()
    require_browser()
    with running_stack(tmp_path_factory.mktemp("console"), workers=0, redis_db=REDIS_DB,
                       extra_env=STACK_ENV) as stack:
        port = free_port()
        stack.spawn("console", with_option(service_command("console"), "--bind",
                                           f"127.0.0.1:{port}"))
        console_url = f"http://127.0.0.1:{port}/console"
        create_operator(stack)
        world = provision(stack)
        world.console_url = console_url
        stack.start_worker("worker1")
        wait_for(lambda: dead_letters(stack) == 1, "the group's dead letter")
        set_not_before(stack, world.ghost, None)
        wait_for(lambda: stack.backlog() == 0, "the ghost's create applying")
        wait_until_serving(f"{console_url}/login", stack.processes["console"],
                           stack.workdir / "console.log")
        yield world


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def sign_in(page: Any, world: World, password: str = PASSWORD) -> Any:
    page.goto(f"{world.console_url}/login")
    page.fill("input[name=username]", OPERATOR)
    page.fill("input[name=password]", password)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    return navigation.value


def test_an_operator_finds_a_user_and_replays_a_dead_letter(world: World, page: Any) -> None:
    sign_in(page, world)
    assert page.url == f"{world.console_url}/tenants"
    row = page.locator("tr", has=page.locator(f"a:text-is('{world.tenant}')"))
    assert row.locator("td").nth(4).inner_text() == "1"  # its dead letter

    page.click(f"a:text-is('{world.tenant}')")
    page.fill("input[name=q]", "alice@")
    page.select_option("select[name=type]", "User")
    page.click("form.search button")
    links = page.locator("table a")
    assert links.all_inner_texts() == ["alice@acme.test"]
    assert "ext-alice" in page.inner_text("table") and "staff" in page.inner_text("table")

    links.first.click()
    assert page.inner_text("h1") == "alice@acme.test"
    created_line = page.locator("table.history tbody tr").first
    assert "created" in created_line.inner_text()
    utc = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")
    assert utc.search(created_line.locator("td.acknowledged").inner_text())
    assert utc.search(created_line.locator("td.applied").inner_text())

    page.click("nav a:text-is('Dead letters')")
    letter = page.locator("tbody tr", has_text="staff")
    assert world.ghost in letter.inner_text()
    letter.locator("button:text-is('Replay')").click()
    page.wait_for_load_state()
    assert page.url.startswith(f"{world.console_url}/dead-letters")
    wait_for(lambda: world.ghost in members_of(world.stack, world.group), "the replay applying")

    page.goto(f"{world.console_url}/tenants/{world.tenant}/resources/{world.group}")
    last = page.locator("table.history tbody tr").last
    assert "added 1 member" in last.inner_text()
    assert utc.search(last.locator("td.applied").inner_text())
    assert page.locator("button:text-is('Replay')").count() == 0


def test_a_wrong_password_is_refused(world: World, page: Any) -> None:
    answer = sign_in(page, world, password="not the password at all")
    assert answer.status == 401
    assert "Wrong username or password." in page.inner_text("p.error")
    assert not [c for c in page.context.cookies() if c["name"] == "scimflow_console"]


def test_the_session_cookie_is_http_only_lax_and_secure(world: World, page: Any) -> None:
    sign_in(page, world)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "scimflow_console"]
    assert cookie["httpOnly"] and cookie["secure"]
    assert cookie["sameSite"] == "Lax" and cookie["path"] == "/console"


def test_a_post_without_the_csrf_token_is_refused(world: World, page: Any) -> None:
    sign_in(page, world)
    [letter] = world.stack.sql("SELECT id FROM dead_letters")
    url = f"{world.console_url}/dead-letters/{letter[0]}/discard"
    refused = page.request.post(url, form={"back": "/console/tenants"}, max_redirects=0)
    assert refused.status == 403
    forged = page.request.post(url, form={"csrf_token": "forged"}, max_redirects=0)
    assert forged.status == 403
    assert world.stack.sql("SELECT discarded_at FROM dead_letters")[0][0] is None


def test_a_tenant_scim_token_does_not_open_the_console(world: World, page: Any) -> None:
    page.set_extra_http_headers({"Authorization": f"Bearer {world.token}"})
    page.goto(f"{world.console_url}/tenants")
    assert page.url == f"{world.console_url}/login"
    assert page.locator("input[name=password]").count() == 1
    answer = httpx.get(f"{world.console_url}/tenants", follow_redirects=False,
                       headers={"Authorization": f"Bearer {world.token}"})
    assert answer.status_code == 303
    assert world.token not in answer.text


def test_unknown_or_bad_input_is_an_error_page_never_a_500(world: World, page: Any) -> None:
    sign_in(page, world)
    tenant = f"{world.console_url}/tenants/{world.tenant}"
    answers = {
        f"{world.console_url}/tenants/nobody": 404,
        f"{tenant}/resources/nobody": 404,
        f"{tenant}?q=%00": 400,
        f"{tenant}?type=Robot": 400,
        f"{world.console_url}/tenants/a%00b": 400,
        f"{world.console_url}/dead-letters?tenant=nobody": 404,
    }
    for url, status in answers.items():
        answer = page.request.get(url, max_redirects=0)
        assert answer.status == status, (url, answer.status)
        assert "text/html" in answer.headers["content-type"], url
