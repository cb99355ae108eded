"""The existence check (`<unique attribute> eq "…"`) answers like any other search.

It takes its own one-probe path (pipeline/store/unique_lookup.py); these tests hold it to the
results, totals and paging of the general path, on both databases.
"""

from __future__ import annotations

from typing import Any

import pytest

from scimflow.pipeline.scim.filters import parse_filter
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services.reads import SearchPage, SearchQuery
from scimflow.pipeline.store import unique_lookup
from tests.integration.conftest import Services


def _find(services: Services, tenant: Any, type_name: str, filter_text: str,
          **query: Any) -> SearchPage:
    return services.reads.search(tenant, type_name, SearchQuery(filter=filter_text, **query))


def _ids(page: SearchPage) -> list[str]:
    return [item.resource.id for item in page.items]


@pytest.mark.parametrize(("type_name", "filter_text", "unique"), [
    ("User", 'userName eq "A@b.c"', True),
    ("User", 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"', True),
    ("User", 'externalId eq "x"', True),
    ("User", 'id eq "x"', True),
    ("Group", 'displayName eq "Sales"', True),
    ("User", 'userName ne "a"', False),
    ("User", 'userName sw "a"', False),
    ("User", 'displayName eq "a"', False),  # a user's displayName is not unique
    ("User", 'userName eq "a" and active eq true', False),
    ("User", 'name.familyName eq "a"', False),
])
def test_only_equality_on_a_unique_attribute_takes_the_one_probe_path(
    type_name: str, filter_text: str, unique: bool
) -> None:
    resource_type = default_protocol().resource_type(type_name)
    found = unique_lookup.unique_key(parse_filter(filter_text), resource_type)
    assert (found is not None) is unique


def test_user_name_matches_case_insensitively_and_external_id_exactly(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    user = services.user(acme, "Barbara.Jensen@Example.com", externalId="00uBJ")
    assert _ids(_find(services, acme, "User", 'userName eq "barbara.jensen@example.COM"')) == [
        user]
    assert _ids(_find(services, acme, "User", 'externalId eq "00uBJ"')) == [user]
    assert _find(services, acme, "User", 'externalId eq "00ubj"').total_results == 0
    assert _ids(_find(services, acme, "User", f'id eq "{user}"')) == [user]


def test_a_match_is_counted_but_not_listed_outside_the_page(services: Services) -> None:
    acme = services.tenant("acme")
    services.user(acme, "bjensen@example.com")
    beyond = _find(services, acme, "User", 'userName eq "bjensen@example.com"', start_index=2)
    assert (beyond.total_results, beyond.items) == (1, [])
    counted = _find(services, acme, "User", 'userName eq "bjensen@example.com"', count=0)
    assert (counted.total_results, counted.items) == (1, [])


def test_another_tenants_or_another_types_resource_is_not_found(services: Services) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    user = services.user(acme, "shared@example.com")
    group = services.group(acme, "Sales")
    assert _find(services, globex, "User", 'userName eq "shared@example.com"').total_results == 0
    assert _find(services, acme, "Group", f'id eq "{user}"').total_results == 0
    assert _ids(_find(services, acme, "Group", 'displayName eq "sales"')) == [group]


def test_a_user_and_a_group_may_share_an_external_id(services: Services) -> None:
    # Probes read by key and tenant only (one index whatever the statistics), so the type is
    # told apart on the rows read: each type finds its own, and neither blocks the other.
    acme = services.tenant("acme")
    group = services.group(acme, "Sales")
    services.writes.patch(acme, "Group", group, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "externalId", "value": "shared-1"}],
    }, if_match=None, request_id="test")
    user = services.user(acme, "a@example.com", externalId="shared-1")
    assert _ids(_find(services, acme, "User", 'externalId eq "shared-1"')) == [user]
    assert _ids(_find(services, acme, "Group", 'externalId eq "shared-1"')) == [group]
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "a@example.com", "externalId": "shared-1", "displayName": "A"}
    services.writes.replace(acme, "User", user, body, if_match=None, request_id="test")
    assert _find(services, acme, "User", 'externalId eq "shared-1"').items[0].resource.version == 2
