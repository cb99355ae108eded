"""Filters on `meta` see the timestamps a response shows (RFC 7643 §3.1, RFC 7644 §3.4.2.2).

The acknowledged row keeps microseconds; responses show milliseconds. A client that copies
`meta.created` from a response into a filter must find the resource, whether the database
decides the filter or the candidates are evaluated in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.services import ApiServices
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.services.tenancy import Tenancy
from scimflow.pipeline.settings import Settings
from tests.api.conftest import BASE, RecordingDispatcher, api_services, create_user

# Finer than a millisecond, so a filter that compared stored microseconds would tell.
CREATED_AT = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
SHOWN = "2026-03-04T05:06:07.123Z"
# `name.givenName pr` is true of the user but has no column: the filter is evaluated in memory.
IN_MEMORY = " and name.givenName pr"


@pytest.fixture
def services(
    settings: Settings,
    sessions: sessionmaker[Session],
    tenancy: Tenancy,
    dispatcher: RecordingDispatcher,
    protocol: ScimProtocol,
) -> ApiServices:
    """The API's services, writing with a clock that stops at CREATED_AT."""
    return api_services(settings, sessions, tenancy, dispatcher, protocol,
                        clock=lambda: CREATED_AT)


@pytest.fixture
def user(client: testing.TestClient) -> dict[str, Any]:
    return create_user(client)


def found(client: testing.TestClient, filter_text: str) -> int:
    result = client.simulate_get(f"{BASE}/Users", params={"filter": filter_text})
    assert result.status_code == 200, result.text
    total: int = result.json["totalResults"]
    return total


def test_meta_is_shown_to_the_millisecond_with_a_weak_etag(
    client: testing.TestClient, user: dict[str, Any]
) -> None:
    assert user["meta"]["created"] == user["meta"]["lastModified"] == SHOWN
    fetched = client.simulate_get(f"{BASE}/Users/{user['id']}")
    assert fetched.json["meta"]["created"] == SHOWN
    assert fetched.headers["ETag"] == fetched.json["meta"]["version"] == 'W/"1"'


@pytest.mark.parametrize("attribute", ["meta.created", "meta.lastModified"])
@pytest.mark.parametrize(
    "operation", [f'sw "{SHOWN[:-1]}"', f'sw "{SHOWN}"', 'co ".123Z"', 'ew "07.123Z"']
)
def test_the_shown_text_matches_in_memory(
    client: testing.TestClient, user: dict[str, Any], attribute: str, operation: str
) -> None:
    """`co`/`sw`/`ew` on a dateTime match its text, which is evaluated in memory."""
    assert found(client, f"{attribute} {operation}") == 1


@pytest.mark.parametrize("where", ["", IN_MEMORY], ids=["database", "memory"])
@pytest.mark.parametrize(
    ("comparison", "matches"),
    [
        (f'eq "{SHOWN}"', True),
        (f'ne "{SHOWN}"', False),
        ('eq "2026-03-04T07:06:07.123+02:00"', True),
        ('eq "2026-03-04T05:06:07.1234Z"', False),  # finer than anything shown
        (f'gt "{SHOWN}"', False),
        (f'ge "{SHOWN}"', True),
        (f'lt "{SHOWN}"', False),
        (f'le "{SHOWN}"', True),
        ('gt "2026-03-04T05:06:07.1229Z"', True),
        ('le "2026-03-04T05:06:07.1229Z"', False),
        ('lt "2026-03-04T05:06:07.1231Z"', True),
        ('ge "2026-03-04T05:06:07.1231Z"', False),
        ('lt "2026-03-04T05:06:07.124Z"', True),
        ('ge "2026-03-04T05:06:07.124Z"', False),
    ],
)
def test_meta_compares_as_shown_in_the_database_and_in_memory(
    client: testing.TestClient, user: dict[str, Any], where: str, comparison: str, matches: bool
) -> None:
    for attribute in ("meta.created", "meta.lastModified"):
        assert found(client, f"{attribute} {comparison}{where}") == int(matches), attribute
