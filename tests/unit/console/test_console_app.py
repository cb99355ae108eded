"""The console app against fakes at its ports: sign-in, CSRF, cookies, headers, pages, errors."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import pytest
from falcon import testing

from scimflow.api.console.app import create_console
from scimflow.api.console.services import LOGIN_FAILURES, ConsoleServices
from tests.unit.console.fakes import (
    NOW,
    PASSWORD,
    FakeAccounts,
    FakeReadModel,
    FakeSessions,
    overview,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Console:
    client: testing.TestClient
    reads: FakeReadModel
    sessions: FakeSessions
    accounts: FakeAccounts

    def login_form(self) -> tuple[str, str]:
        """The login page's CSRF field and the cookie it must match."""
        page = self.client.simulate_get("/console/login")
        return CSRF.findall(page.text)[0], page.cookies["scimflow_console_login"].value

    def sign_in(self) -> tuple[str, str]:
        """A session cookie value and its CSRF token."""
        field, cookie = self.login_form()
        answer = self.client.simulate_post(
            "/console/login", headers=FORM, cookies={"scimflow_console_login": cookie},
            body=f"csrf_token={field}&username=ops&password={PASSWORD.replace(' ', '+')}",
        )
        assert answer.status_code == 303, answer.text
        token = answer.cookies["scimflow_console"].value
        return token, self.sessions.live[token].csrf_token

    def get(self, path: str, token: str, **options: Any) -> testing.Result:
        return self.client.simulate_get(path, cookies={"scimflow_console": token}, **options)

    def post(self, path: str, token: str, body: str) -> testing.Result:
        return self.client.simulate_post(path, cookies={"scimflow_console": token},
                                         headers=FORM, body=body)


def make_console(*, secure_cookie: bool = True) -> Console:
    reads, sessions, accounts = FakeReadModel(), FakeSessions(), FakeAccounts()
    services = ConsoleServices(operations=reads, accounts=accounts, sessions=sessions,
                               secure_cookie=secure_cookie, clock=lambda: NOW)
    return Console(testing.TestClient(create_console(services)), reads, sessions, accounts)


@pytest.fixture
def console() -> Console:
    return make_console()


# --- signing in ------------------------------------------------------------------------------


def test_without_a_session_every_page_sends_to_the_login(console: Console) -> None:
    for path in ("/console", "/console/tenants", "/console/tenants/acme",
                 "/console/dead-letters", "/console/deliveries"):
        answer = console.client.simulate_get(path)
        assert answer.status_code == 303, path
        assert answer.headers["Location"].endswith("/console/login")


def test_the_login_form_carries_a_token_matched_by_a_strict_cookie(console: Console) -> None:
    page = console.client.simulate_get("/console/login")
    cookie = page.cookies["scimflow_console_login"]
    assert CSRF.findall(page.text) == [cookie.value]
    assert cookie.http_only and cookie.secure and cookie.path == "/console"
    assert cookie.same_site == "Strict"


def test_a_login_without_its_csrf_token_is_refused(console: Console) -> None:
    _, cookie = console.login_form()
    for body in (f"username=ops&password={PASSWORD}",
                 f"csrf_token=forged&username=ops&password={PASSWORD}"):
        answer = console.client.simulate_post("/console/login", headers=FORM, body=body,
                                              cookies={"scimflow_console_login": cookie})
        assert answer.status_code == 403
        assert "scimflow_console" not in answer.cookies
    assert console.sessions.live == {}


def test_a_wrong_password_is_the_login_page_with_an_error_and_401(console: Console) -> None:
    field, cookie = console.login_form()
    answer = console.client.simulate_post(
        "/console/login", headers=FORM, cookies={"scimflow_console_login": cookie},
        body=f"csrf_token={field}&username=ops&password=wrong",
    )
    assert answer.status_code == 401
    assert "Wrong username or password." in answer.text
    assert 'value="ops"' in answer.text
    assert "scimflow_console" not in answer.cookies
    assert console.sessions.live == {}


def test_an_address_that_keeps_guessing_is_refused_before_any_password_is_checked(
        console: Console) -> None:
    field, cookie = console.login_form()

    def attempt(password: str) -> testing.Result:
        return console.client.simulate_post(
            "/console/login", headers=FORM, cookies={"scimflow_console_login": cookie},
            body=f"csrf_token={field}&username=ops&password={password}")

    assert [attempt("wrong").status_code for _ in range(LOGIN_FAILURES)] == [401] * 10
    asked = len(console.accounts.asked)
    refused = attempt(PASSWORD)  # even the right password, from this address, for now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in refused.text
    assert len(console.accounts.asked) == asked
    assert console.sessions.live == {}


@pytest.mark.parametrize("username", ["ops%00", "o" * 201, ""])
def test_an_impossible_username_fails_like_a_wrong_password(console: Console,
                                                            username: str) -> None:
    field, cookie = console.login_form()
    answer = console.client.simulate_post(
        "/console/login", headers=FORM, cookies={"scimflow_console_login": cookie},
        body=f"csrf_token={field}&username={username}&password={PASSWORD}",
    )
    assert answer.status_code == 401
    assert console.accounts.asked == []


def test_the_session_cookie_is_http_only_lax_secure_and_scoped(console: Console) -> None:
    field, cookie = console.login_form()
    answer = console.client.simulate_post(
        "/console/login", headers=FORM, cookies={"scimflow_console_login": cookie},
        body=f"csrf_token={field}&username=ops&password={PASSWORD}",
    )
    session = answer.cookies["scimflow_console"]
    assert answer.headers["Location"].endswith("/console/tenants")
    assert session.http_only and session.secure
    assert session.same_site == "Lax" and session.path == "/console"
    assert session.max_age == 12 * 3600


def test_the_cookie_is_not_secure_when_the_setting_says_so() -> None:
    console = make_console(secure_cookie=False)
    field, cookie = console.login_form()
    answer = console.client.simulate_post(
        "/console/login", headers=FORM, cookies={"scimflow_console_login": cookie},
        body=f"csrf_token={field}&username=ops&password={PASSWORD}",
    )
    assert not answer.cookies["scimflow_console"].secure


@pytest.mark.parametrize("authorization", [
    "Bearer a-tenant-scim-token",
    "Bearer sfk_an-application-key",
    "Basic " + base64.b64encode(b"ops:" + PASSWORD.encode()).decode(),
])
def test_no_header_credential_opens_the_console(console: Console, authorization: str) -> None:
    answer = console.client.simulate_get("/console/tenants",
                                         headers={"Authorization": authorization})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/login")


def test_logout_ends_the_session_server_side(console: Console) -> None:
    token, csrf = console.sign_in()
    answer = console.post("/console/logout", token, f"csrf_token={csrf}")
    assert answer.status_code == 303
    assert console.sessions.ended == [token]
    assert console.get("/console/tenants", token).status_code == 303


def test_logout_needs_its_csrf_token(console: Console) -> None:
    token, _ = console.sign_in()
    assert console.post("/console/logout", token, "").status_code == 403
    assert console.sessions.ended == []


# --- state-changing requests -----------------------------------------------------------------


def test_a_replay_without_the_csrf_token_is_refused(console: Console) -> None:
    token, _ = console.sign_in()
    for body in ("", "csrf_token=", "csrf_token=not-the-token"):
        answer = console.post("/console/dead-letters/7/replay", token, body)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    assert console.reads.replayed == []


def test_a_replay_with_the_token_replays_and_goes_back(console: Console) -> None:
    token, csrf = console.sign_in()
    back = "/console/tenants/acme/resources/u-1"
    answer = console.post("/console/dead-letters/7/replay", token,
                          f"csrf_token={csrf}&back={back}")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(back)
    assert console.reads.replayed == [7]


def test_discard_goes_back_only_inside_the_console(console: Console) -> None:
    token, csrf = console.sign_in()
    answer = console.post("/console/dead-letters/7/discard", token,
                          f"csrf_token={csrf}&back=https://evil.example/")
    assert answer.headers["Location"].endswith("/console/dead-letters")
    answer = console.post("/console/dead-letters/7/discard", token,
                          f"csrf_token={csrf}&back=//evil.example/console/")
    assert answer.headers["Location"].endswith("/console/dead-letters")
    assert console.reads.discarded == [7, 7]


def test_a_get_never_changes_state(console: Console) -> None:
    token, _ = console.sign_in()
    assert console.get("/console/dead-letters/7/replay", token).status_code == 405
    assert console.reads.replayed == []


def test_a_post_without_a_session_is_forbidden(console: Console) -> None:
    answer = console.client.simulate_post("/console/dead-letters/7/replay", headers=FORM,
                                          body="csrf_token=x")
    assert answer.status_code == 403
    assert console.reads.replayed == []


# --- pages -----------------------------------------------------------------------------------


def test_pages_carry_the_security_headers_and_are_not_stored(console: Console) -> None:
    token, _ = console.sign_in()
    for answer in (console.get("/console/tenants", token),
                   console.client.simulate_get("/console/login")):
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["Cache-Control"] == "no-store"


def test_the_tenants_table(console: Console) -> None:
    token, _ = console.sign_in()
    page = console.get("/console/tenants", token)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for text in ("acme", "12.5/s", "1 min", "0.4 s / 2.0 s", "Okta", "2026-12-04 14:59:30Z",
                 "30 s ago", "ops"):
        assert text in page.text, text
    assert 'http-equiv="refresh"' not in page.text


def test_auto_refresh_is_a_toggle(console: Console) -> None:
    token, _ = console.sign_in()
    page = console.get("/console/tenants", token, params={"refresh": "on"})
    assert '<meta http-equiv="refresh" content="10">' in page.text
    assert 'href="/console/tenants">Auto-refresh every 10 s: on' in page.text


def test_what_a_tenant_is_named_is_escaped(console: Console) -> None:
    console.reads.tenant_list = [overview("<script>x</script>")]
    token, _ = console.sign_in()
    page = console.get("/console/tenants", token)
    assert "<script>x</script>" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text


def test_the_directory_searches_by_query_and_type(console: Console) -> None:
    token, _ = console.sign_in()
    page = console.get("/console/tenants/acme", token, params={"q": "ali", "type": "User"})
    assert page.status_code == 200
    assert console.reads.searches == [("acme", "ali", "User")]
    assert 'href="/console/tenants/acme/resources/u-1"' in page.text
    assert "ext-1" in page.text and "staff" in page.text


def test_a_type_other_than_user_or_group_is_a_400_page(console: Console) -> None:
    token, _ = console.sign_in()
    page = console.get("/console/tenants/acme", token, params={"type": "Robot"})
    assert page.status_code == 400
    assert page.headers["Content-Type"].startswith("text/html")


def test_a_history_shows_times_and_a_replay_button(console: Console) -> None:
    token, csrf = console.sign_in()
    page = console.get("/console/tenants/acme/resources/u-1", token)
    assert page.status_code == 200
    for text in ("req-create", "created", "2026-12-04 14:57:00Z", "2026-12-04 14:58:00Z",
                 "KeyError: &#39;value&#39;", 'action="/console/dead-letters/7/replay"',
                 f'value="{csrf}"'):
        assert text in page.text, text


@pytest.mark.parametrize("path", [
    "/console/tenants/nobody",
    "/console/tenants/nobody/resources/u-1",
    "/console/tenants/acme/resources/nothing",
    "/console/dead-letters?tenant=nobody",
    "/console/no-such-page",
])
def test_unknown_things_are_a_404_page(console: Console, path: str) -> None:
    token, _ = console.sign_in()
    route, _, query = path.partition("?")
    page = console.get(route, token, query_string=query)
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Back to the tenants" in page.text


def test_an_unknown_dead_letter_is_a_404_page(console: Console) -> None:
    token, csrf = console.sign_in()
    for path in ("/console/dead-letters/999/replay", "/console/dead-letters/abc/replay",
                 "/console/dead-letters/0/replay"):
        assert console.post(path, token, f"csrf_token={csrf}").status_code == 404, path


def test_dead_letters_and_deliveries(console: Console) -> None:
    token, _ = console.sign_in()
    letters = console.get("/console/dead-letters", token)
    assert "added 1 member" in letters.text and "Replay" in letters.text
    deliveries = console.get("/console/deliveries", token)
    assert "https://hooks.example.com/scim" in deliveries.text and "12 ms" in deliveries.text


def test_the_stylesheet_is_public_and_cached(console: Console) -> None:
    answer = console.client.simulate_get("/console/static/console.css")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/css")
    assert "max-age" in answer.headers["Cache-Control"]


def test_a_path_outside_the_console_is_a_404_not_a_login(console: Console) -> None:
    """A browser's /favicon.ico must not be sent to the login page: that would hand out a new
    login token behind the back of the form already shown."""
    answer = console.client.simulate_get("/favicon.ico")
    assert answer.status_code == 404
    assert "scimflow_console_login" not in answer.cookies


def test_the_login_form_keeps_the_browser_s_token(console: Console) -> None:
    field, cookie = console.login_form()
    again = console.client.simulate_get("/console/login",
                                        cookies={"scimflow_console_login": cookie})
    assert CSRF.findall(again.text) == [field]
    forged = console.client.simulate_get("/console/login",
                                         cookies={"scimflow_console_login": "<x>"})
    assert CSRF.findall(forged.text) != ["<x>"]


def test_a_settled_dead_letter_is_a_409_page(console: Console) -> None:
    from scimflow.pipeline.store.dead_letters import AlreadySettled

    def settled(dead_letter_id: int) -> None:
        raise AlreadySettled("Dead letter 7 was already replayed.")

    console.reads.replay = settled  # type: ignore[method-assign, assignment]
    token, csrf = console.sign_in()
    answer = console.post("/console/dead-letters/7/replay", token, f"csrf_token={csrf}")
    assert answer.status_code == 409
    assert "already replayed" in answer.text
