"""Searches on both databases, at their limits: the HTTP API over SQLite and PostgreSQL.

* Paging values of any size are answered, never a 500: a startIndex past the end is an empty
  page with the exact total (RFC 7644 §3.4.2.4), whatever integer the client sent.
* Never-returned attributes (the password hash) are not searchable on the SQL path, the
  in-memory path or the existence check.
* Case-insensitive keys compare in SQL by `fold_key`, as acceptance stores them, so `eq`,
  `sw`, `co` and `ew` agree with the in-memory evaluator.
"""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing
from sqlalchemy import Engine

from scimflow.api.services import ApiServices
from scimflow.pipeline.errors import InvalidFilter
from scimflow.pipeline.scim.discovery import Capabilities
from scimflow.pipeline.scim.filters import parse_filter
from scimflow.pipeline.scim.paths import AttrPath
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.reads import SearchQuery
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import Settings
from scimflow.pipeline.store import search, unique_lookup
from scimflow.pipeline.store.db import make_sessions
from scimflow.pipeline.store.tenants import IssuedToken
from tests.api.conftest import BASE, assert_scim_error, client_for, scim_body
from tests.integration.conftest import Services

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
MAX_RESULTS = 50
HUGE = 10**30
USERS = ("ann", "bob", "cid")
GROUPS = ("Admins",)


def search_body(**parameters: Any) -> dict[str, Any]:
    return scim_body({"schemas": [SEARCH_REQUEST], **parameters})


@pytest.fixture
def api(db_engine: Engine, services: Services, database_url: str) -> testing.TestClient:
    """Acme's API client over this test's database, holding three users and one group."""
    sessions = make_sessions(db_engine)
    tenancy = Tenancy(sessions)
    acme: IssuedToken = tenancy.create("acme")
    for name in USERS:
        services.user(acme.tenant, name, password="Secret-123", name={"familyName": name})
    for name in GROUPS:
        services.group(acme.tenant, name)
    settings = Settings(database_url=database_url, filter_max_results=MAX_RESULTS)
    api_services = ApiServices(
        settings=settings,
        tenancy=tenancy,
        writes=services.writes,
        reads=services.reader(max_results=MAX_RESULTS),
        registry=default_protocol().registry,
        capabilities=Capabilities(filter_max_results=MAX_RESULTS),
        ready=lambda: None,
    )
    return client_for(api_services, acme)


# --- Paging values of any size ---------------------------------------------------------------

# SQL paging, an in-memory filter, an in-memory sort, and both in memory.
QUERIES = [{}, {"filter": "name pr"}, {"sortBy": "name.familyName"},
           {"filter": "name pr", "sortBy": "name.familyName"}]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("start_index", [HUGE, 2**63, 2**62, -HUGE])
def test_any_start_index_in_a_search_body_is_answered(
    api: testing.TestClient, query: dict[str, Any], start_index: int
) -> None:
    result = api.simulate_post(
        f"{BASE}/Users/.search", **search_body(startIndex=start_index, count=HUGE, **query)
    )
    assert result.status_code == 200, result.text
    page = result.json
    assert page["totalResults"] == len(USERS)
    expected = len(USERS) if start_index < 0 else 0  # below 1 is 1 (RFC 7644 §3.4.2.4)
    assert len(page["Resources"]) == expected


@pytest.mark.parametrize("query", QUERIES[:2])
def test_huge_paging_parameters_in_a_url_are_answered(
    api: testing.TestClient, query: dict[str, Any]
) -> None:
    past_the_end = api.simulate_get(
        f"{BASE}/Users", params={"startIndex": str(HUGE), "count": str(HUGE), **query}
    )
    assert past_the_end.status_code == 200, past_the_end.text
    assert (past_the_end.json["totalResults"], past_the_end.json["Resources"]) == (3, [])
    capped = api.simulate_get(
        f"{BASE}/Users", params={"startIndex": f"-{HUGE}", "count": "9" * 5000, **query}
    )
    assert capped.status_code == 200, capped.text
    assert capped.json["startIndex"] == 1
    assert len(capped.json["Resources"]) == len(USERS)


def test_a_huge_start_index_at_the_root_search_is_answered(api: testing.TestClient) -> None:
    result = api.simulate_post(f"{BASE}/.search", **search_body(startIndex=HUGE, count=HUGE))
    assert result.status_code == 200, result.text
    page = result.json
    assert (page["totalResults"], page["Resources"]) == (len(USERS) + len(GROUPS), [])
    first = api.simulate_post(f"{BASE}/.search", **search_body(count=HUGE)).json
    assert len(first["Resources"]) == len(USERS) + len(GROUPS)


@pytest.mark.parametrize("name", ["startIndex", "count"])
@pytest.mark.parametrize("value", ["2", 1.5, 2.0, 1e300, True, False, [1], {"n": 1}])
def test_paging_values_that_are_not_integers_are_invalid_value(
    api: testing.TestClient, name: str, value: Any
) -> None:
    for endpoint in ("/Users/.search", "/.search"):
        result = api.simulate_post(f"{BASE}{endpoint}", **search_body(**{name: value}))
        assert_scim_error(result, 400, "invalidValue")


@pytest.mark.parametrize("text", ["1.5", "1e3", "true", "0x10", "", "1 2"])
def test_paging_parameters_that_are_not_integers_are_invalid_value(
    api: testing.TestClient, text: str
) -> None:
    if not text:
        assert api.simulate_get(f"{BASE}/Users", params={"count": text}).status_code == 200
        return
    for name in ("startIndex", "count"):
        result = api.simulate_get(f"{BASE}/Users", params={name: text})
        assert_scim_error(result, 400, "invalidValue")


# --- Never-returned attributes on every path -------------------------------------------------


@pytest.mark.parametrize(
    "filter_text",
    [
        'password sw "pbkdf2_sha256$"',  # SQL: userName and password would both be atoms
        'userName eq "ann" and password pr',
        'name pr and password co "$"',  # evaluated in memory
        "password pr or id pr",
    ],
)
def test_password_filters_are_refused_on_both_databases(
    api: testing.TestClient, filter_text: str
) -> None:
    for endpoint in ("/Users/.search", "/.search"):
        result = api.simulate_post(f"{BASE}{endpoint}", **search_body(filter=filter_text))
        assert_scim_error(result, 400, "invalidFilter")


def test_sorting_by_the_password_is_refused_on_both_databases(api: testing.TestClient) -> None:
    for query in ({}, {"filter": "name pr"}):
        result = api.simulate_post(
            f"{BASE}/Users/.search", **search_body(sortBy="password", **query)
        )
        assert_scim_error(result, 400, "invalidFilter")


def test_the_sql_translation_and_the_existence_check_refuse_the_password() -> None:
    """Refused where the store resolves a path, even for a filter nobody checked first."""
    user_type = default_protocol().resource_type("User")
    password = parse_filter('password eq "pbkdf2_sha256$1$c2FsdA$ZGlnZXN0"')
    with pytest.raises(InvalidFilter):
        unique_lookup.unique_key(password, user_type)
    for dialect in ("postgresql", "sqlite"):
        with pytest.raises(InvalidFilter):
            search.translate(password, user_type, dialect=dialect)
    with pytest.raises(InvalidFilter):
        search.key_column(AttrPath(USER_SCHEMA, "password", None), user_type)
    with pytest.raises(InvalidFilter):
        search.resolve_sort("password", "ascending", user_type)


# --- Folded keys in SQL ----------------------------------------------------------------------

DECOMPOSED_E = "e\u0301"  # "e" + COMBINING ACUTE ACCENT: canonically equal to "é"


@pytest.mark.parametrize(
    "filter_text",
    [
        'userName eq "straße"',  # the existence check's probe
        f'userName eq "JOS{DECOMPOSED_E.upper()} ORTIZ"',
        'userName sw "STRAß"',  # SQL substring operators fold the operand too
        f'userName co "s{DECOMPOSED_E} o"',
        'userName ew "AßE"',
        'userName ge "STRAßE" and userName lt "Z"',  # orders by the folded operand
        'userName sw "STRAß" or nickName pr',  # evaluated in memory: the same answer
        f'userName co "s{DECOMPOSED_E} o" or nickName pr',
    ],
)
def test_folded_keys_compare_by_fold_key_in_sql_and_in_memory(
    services: Services, filter_text: str
) -> None:
    acme = services.tenant("acme")
    services.user(acme, "Straße")
    services.user(acme, "José Ortiz")
    services.user(acme, "Zed")
    page = services.reads.search(acme, "User", SearchQuery(filter=filter_text))
    assert page.total_results == 1, filter_text
    assert len(page.items) == 1
