"""The operator console under a sync: operators reloading a tenant's page while the IdP pushes.

`scimflow bench --console-operators N` starts `scimflow console` beside the stack, signs N
operators in, and has each reload the tenant's page (its figures and its directory) every
`--console-interval` seconds from the first request of the sync to the last user acknowledged:
the page's latency under the sync is the console's responsiveness, and the sync's figures with
and without it are its cost (benchmarks/console_cost.py runs both, alternately).
`--console-screenshots DIR` also saves the tenants page, the tenant's page and a user's history
page, half-way through the users, through headless Chromium.
See docs/ARCHITECTURE.md ("The operator console").
"""

from __future__ import annotations

import http.client
import re
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from scimflow.ops.bench.measure import percentile_ms
from scimflow.ops.bench.stack import Processes, free_port, wait_http

ROOT = "/console"
OPERATOR = "bench-operator"
SESSION_COOKIE = "scimflow_console"
CHROMIUM = "/usr/bin/chromium"
_CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


@dataclass(frozen=True)
class Console:
    port: int
    # The signed-in operator's session cookie ("name=value").
    cookie: str

    def tenant_path(self, tenant: str) -> str:
        return f"{ROOT}/tenants/{quote(tenant, safe='')}"


def start_console(processes: Processes) -> Console:
    """Create an operator, start `scimflow console` on a free port and sign in."""
    password = secrets.token_urlsafe(18)
    subprocess.run(["scimflow", "operator", "create", OPERATOR, "--password-stdin"],
                   input=password, text=True, env=processes.env, check=True,
                   capture_output=True, timeout=60)
    port = free_port()
    # On loopback without TLS: the cookie must travel over plain HTTP.
    processes.spawn("console", ["scimflow", "console", "--bind", f"127.0.0.1:{port}"],
                    extra_env={"SCIMFLOW_CONSOLE_SECURE_COOKIE": "false"})
    wait_http(f"http://127.0.0.1:{port}{ROOT}/login")
    return Console(port, sign_in(port, OPERATOR, password))


def sign_in(port: int, username: str, password: str) -> str:
    """The login form's round trip: its CSRF token and cookie, then the session cookie."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"{ROOT}/login")
        form = connection.getresponse()
        page = form.read().decode()
        found = _CSRF.search(page)
        if form.status != 200 or found is None:
            raise RuntimeError(f"the console's login page answered {form.status}")
        body = urlencode({"username": username, "password": password,
                          "csrf_token": found.group(1)})
        connection.request("POST", f"{ROOT}/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": _cookie_header(form.headers.get_all("Set-Cookie") or [])})
        signed_in = connection.getresponse()
        signed_in.read()
        session = _cookies(signed_in.headers.get_all("Set-Cookie") or []).get(SESSION_COOKIE)
        if session is None:
            raise RuntimeError(f"signing in to the console answered {signed_in.status}")
        return f"{SESSION_COOKIE}={session}"
    finally:
        connection.close()


@dataclass
class PageLoad:
    """Operators reloading one page at a fixed interval, each on its own keep-alive
    connection, until stopped."""

    console: Console
    path: str
    operators: int
    interval: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._started = time.perf_counter()
        for _ in range(self.operators):
            thread = threading.Thread(target=self._operator, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        seconds = time.perf_counter() - self._started
        self.figures = {"operators": self.operators, "interval_s": self.interval,
                        "pages": len(self.latencies), "seconds": round(seconds, 1),
                        "p50_ms": percentile_ms(self.latencies, 0.50),
                        "p99_ms": percentile_ms(self.latencies, 0.99),
                        "max_ms": percentile_ms(self.latencies, 1.0),
                        "statuses": dict(self.statuses), "failures": self.failures[:5]}

    def _operator(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.console.port, timeout=30)
        headers = {"Cookie": self.console.cookie}
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                connection.request("GET", self.path, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as ex:
                self.failures.append(f"{type(ex).__name__}: {ex}")
                connection.close()
            else:
                elapsed = time.perf_counter() - began
                self.statuses[response.status] += 1
                if response.status == 200:
                    self.latencies.append(elapsed)
            self._stop.wait(max(0.0, self.interval - (time.perf_counter() - began)))
        connection.close()


def screenshots_when(console: Console, tenant: str, user_name: str, directory: Path,
                     ready: Callable[[], bool]) -> threading.Thread:
    """Save the tenants page, the tenant's page and a user's history once `ready()` (during
    the sync)."""

    def shoot() -> None:
        while not ready():
            time.sleep(0.2)
        save_screenshots(console, tenant, user_name, directory)

    thread = threading.Thread(target=shoot, daemon=True)
    thread.start()
    return thread


def save_screenshots(console: Console, tenant: str, user_name: str,
                     directory: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only for screenshots

    directory.mkdir(parents=True, exist_ok=True)
    name, value = console.cookie.split("=", 1)
    base = f"http://127.0.0.1:{console.port}"
    saved = [directory / "console-tenants.png", directory / "console-tenant.png",
             directory / "console-history.png"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies([{"name": name, "value": value, "url": base}])
            page = context.new_page()
            page.goto(f"{base}{ROOT}/tenants")
            page.screenshot(path=str(saved[0]), full_page=False)
            page.goto(base + console.tenant_path(tenant))
            page.screenshot(path=str(saved[1]), full_page=False)
            page.goto(f"{base}{console.tenant_path(tenant)}/resources/{quote(user_name, safe='')}")
            page.screenshot(path=str(saved[2]), full_page=True)
        finally:
            browser.close()
    return saved


def _cookies(set_cookies: list[str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookies:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def _cookie_header(set_cookies: list[str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in _cookies(set_cookies).items())
