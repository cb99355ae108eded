"""The API under uWSGI (`SCIMFLOW_API_SERVER=uwsgi`) is the same service as under gunicorn.

The whole stack is started with the compose commands, the API through `scimflow api` with the
server switched to uWSGI: scim2-tester's checks pass, concurrent creates of one userName admit
exactly one, creates of distinct users are applied exactly once, and a chunked body, which
uWSGI cannot delimit, gets 411 instead of being read as empty.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.services import require_postgres, require_redis
from tests.system.idp import USER_SCHEMA
from tests.system.stack import Stack, running_stack
from tests.system.test_conformance import Target, assert_conforms

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def uwsgi_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    with running_stack(tmp_path_factory.mktemp("uwsgi"), redis_db=11,
                       extra_env={"SCIMFLOW_API_SERVER": "uwsgi"}) as stack:
        yield stack


def test_the_api_is_served_by_uwsgi(uwsgi_stack: Stack) -> None:
    assert "uWSGI" in (Path(uwsgi_stack.workdir) / "api.log").read_text(errors="replace")


def test_scim2_tester_passes_under_uwsgi(uwsgi_stack: Stack) -> None:
    tenant = uwsgi_stack.create_tenant(f"conformance-{uuid.uuid4().hex[:6]}")
    assert_conforms(Target("production stack under uWSGI", tenant["base_url"], tenant["token"],
                           uwsgi_stack.database_url))


def _post(stack: Stack, token: str, user_name: str, external_id: str) -> int:
    with stack.client(token) as http:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, "externalId": external_id}
        return http.post("/Users", json=body).status_code


def test_concurrent_creates_race_and_apply_exactly_once_under_uwsgi(uwsgi_stack: Stack) -> None:
    tenant = uwsgi_stack.create_tenant(f"race-{uuid.uuid4().hex[:6]}")
    token = tenant["token"]
    with ThreadPoolExecutor(32) as pool:
        race = Counter(pool.map(lambda i: _post(uwsgi_stack, token, "same@example.com", f"s{i}"),
                                range(32)))
        distinct = Counter(pool.map(lambda i: _post(uwsgi_stack, token, f"u{i}@example.com",
                                                    f"d{i}"), range(300)))
    assert race == {201: 1, 409: 31}
    assert distinct == {201: 300}
    uwsgi_stack.wait_until_applied(timeout=120)
    applied = uwsgi_stack.sql("SELECT count(*), count(DISTINCT user_name) FROM users"
                              " WHERE tenant_id = :t", t=tenant["tenant_id"])
    assert tuple(applied[0]) == (301, 301)


def test_a_chunked_body_gets_411_under_uwsgi(uwsgi_stack: Stack) -> None:
    tenant = uwsgi_stack.create_tenant(f"chunked-{uuid.uuid4().hex[:6]}")

    def chunks() -> Iterator[bytes]:
        yield b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], '
        yield b'"userName": "chunked@example.com"}'

    with uwsgi_stack.client(tenant["token"]) as http:
        response = http.post("/Users", content=chunks())
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 411, response.text
    assert response.json()["status"] == "411"
