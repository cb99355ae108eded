"""POST …/.search (RFC 7644 §3.4.3), and what the adapter hands the ReadService."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from falcon import testing
from sqlalchemy.orm import Session, sessionmaker

from scimflow.api.services import ApiServices
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.services.reads import Found, ReadService, SearchPage, SearchQuery
from scimflow.pipeline.store.tenants import IssuedToken, TenantRef
from tests.api.conftest import (
    BASE,
    assert_scim_error,
    client_for,
    create_group,
    create_user,
    scim_body,
)

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def search(**parameters: Any) -> dict[str, Any]:
    return scim_body({"schemas": [SEARCH_REQUEST], **parameters})


@pytest.fixture
def people(client: testing.TestClient) -> list[dict[str, Any]]:
    users = [
        create_user(client, userName=f"user{n}@example.test", externalId=f"ext-{n}")
        for n in range(2)
    ]
    groups = [create_group(client, name) for name in ("Admins", "Sales")]
    return users + groups


def test_type_search_filters_pages_and_projects(
    client: testing.TestClient, people: list[dict[str, Any]]
) -> None:
    result = client.simulate_post(
        f"{BASE}/Users/.search",
        **search(
            filter='userName sw "user"',
            sortBy="userName",
            attributes=["userName"],
            startIndex=2,
            count=5,
        ),
    )
    assert result.status_code == 200
    page = result.json
    assert page["totalResults"] == 2
    assert page["startIndex"] == 2
    assert page["Resources"] == [
        {
            "schemas": [people[1]["schemas"][0]],
            "id": people[1]["id"],
            "userName": "user1@example.test",
        }
    ]


def test_group_search(client: testing.TestClient, people: list[dict[str, Any]]) -> None:
    page = client.simulate_post(
        f"{BASE}/Groups/.search", **search(filter='displayName eq "sales"')
    ).json
    assert [g["id"] for g in page["Resources"]] == [people[3]["id"]]


def test_root_search_spans_every_type(
    client: testing.TestClient, people: list[dict[str, Any]]
) -> None:
    page = client.simulate_post(f"{BASE}/.search", **search()).json
    assert page["totalResults"] == 4
    assert [r["id"] for r in page["Resources"]] == [p["id"] for p in people]
    assert [r["meta"]["resourceType"] for r in page["Resources"]] == ["User"] * 2 + ["Group"] * 2


def test_root_search_pages_across_types(
    client: testing.TestClient, people: list[dict[str, Any]]
) -> None:
    page = client.simulate_post(f"{BASE}/.search", **search(startIndex=2, count=2)).json
    assert page["totalResults"] == 4
    assert page["startIndex"] == 2
    assert page["itemsPerPage"] == 2
    assert [r["id"] for r in page["Resources"]] == [people[1]["id"], people[2]["id"]]
    last = client.simulate_post(f"{BASE}/.search", **search(startIndex=4, count=10)).json
    assert [r["id"] for r in last["Resources"]] == [people[3]["id"]]
    totals = client.simulate_post(f"{BASE}/.search", **search(count=0)).json
    assert (totals["totalResults"], totals["Resources"]) == (4, [])


def test_root_search_by_an_attribute_only_users_have(
    client: testing.TestClient, people: list[dict[str, Any]]
) -> None:
    page = client.simulate_post(
        f"{BASE}/.search", **search(filter='userName eq "user0@example.test"')
    ).json
    assert page["totalResults"] == 1
    assert page["Resources"][0]["id"] == people[0]["id"]


def test_root_search_with_a_filter_no_type_understands_is_400(
    client: testing.TestClient, people: list[dict[str, Any]]
) -> None:
    for bad in ('nickName eq "x" and', 'noSuchAttribute eq "x"'):
        result = client.simulate_post(f"{BASE}/.search", **search(filter=bad))
        assert_scim_error(result, 400, "invalidFilter")


# --- what the adapter asks of the ReadService ----------------------------------------------


@dataclass
class RecordingReads(ReadService):
    """The real ReadService, recording the arguments each call receives."""

    sessions: sessionmaker[Session]
    protocol: ScimProtocol
    gets: list[bool] = field(default_factory=list)
    queries: list[SearchQuery] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.sessions, self.protocol, max_results=50)

    def get(
        self, tenant: TenantRef, type_name: str, resource_id: str, *, with_memberships: bool = True
    ) -> Found:
        self.gets.append(with_memberships)
        return super().get(tenant, type_name, resource_id, with_memberships=with_memberships)

    def search(self, tenant: TenantRef, type_name: str, query: SearchQuery) -> SearchPage:
        self.queries.append(query)
        return super().search(tenant, type_name, query)


@pytest.fixture
def recording(
    services: ApiServices, sessions: sessionmaker[Session], protocol: ScimProtocol
) -> RecordingReads:
    return RecordingReads(sessions, protocol)


@pytest.fixture
def recorded_client(
    services: ApiServices, recording: RecordingReads, acme: IssuedToken
) -> testing.TestClient:
    return client_for(replace(services, reads=recording), acme)


@pytest.mark.parametrize(
    ("path", "query", "loads"),
    [
        ("Groups", "", True),
        ("Groups", "excludedAttributes=members", False),
        ("Groups", "attributes=displayName", False),
        ("Groups", "attributes=members.value", True),
        ("Users", "excludedAttributes=groups", False),
        ("Users", "", True),
    ],
)
def test_memberships_are_loaded_only_when_rendered(
    recorded_client: testing.TestClient,
    recording: RecordingReads,
    path: str,
    query: str,
    loads: bool,
) -> None:
    created = (
        create_group(recorded_client, "Team") if path == "Groups" else create_user(recorded_client)
    )
    recorded_client.simulate_get(f"{BASE}/{path}/{created['id']}", query_string=query)
    recorded_client.simulate_get(f"{BASE}/{path}", query_string=query)
    assert recording.gets == [loads]
    assert [q.with_memberships for q in recording.queries] == [loads]


@pytest.mark.parametrize(
    ("query", "start_index", "count"),
    [
        ("", 1, None),
        ("startIndex=0&count=-3", 1, 0),
        ("startIndex=7&count=100000", 7, 50),
    ],
)
def test_paging_is_normalised_as_rfc_7644_says(
    recorded_client: testing.TestClient,
    recording: RecordingReads,
    query: str,
    start_index: int,
    count: int | None,
) -> None:
    assert recorded_client.simulate_get(f"{BASE}/Users", query_string=query).status_code == 200
    assert (recording.queries[0].start_index, recording.queries[0].count) == (start_index, count)


def test_query_parameters_reach_the_service(
    recorded_client: testing.TestClient, recording: RecordingReads
) -> None:
    recorded_client.simulate_get(
        f"{BASE}/Users",
        query_string='filter=userName eq "a"&sortBy=userName&sortOrder=Descending',
    )
    query = recording.queries[0]
    assert (query.filter, query.sort_by, query.sort_order) == (
        'userName eq "a"',
        "userName",
        "descending",
    )
