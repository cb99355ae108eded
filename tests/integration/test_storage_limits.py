"""Values longer than the directory's columns are refused when accepted (400 invalidValue).

On PostgreSQL a 513-character userName would otherwise fail the accepting INSERT (a 500), or,
for values only the applied directory stores, be acknowledged and then never apply. Both
databases must refuse the same writes, before anything is journaled.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from scimflow.pipeline.column_limits import MAX_TEXT
from scimflow.pipeline.errors import InvalidValue
from scimflow.pipeline.store.models import JournalEntry
from tests.conftest import patch_body
from tests.integration.conftest import GROUP_SCHEMA, USER_SCHEMA, Services

LONG = "x" * (MAX_TEXT + 1)
LONGEST = "y" * MAX_TEXT


def _journaled(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


@pytest.mark.parametrize("attributes", [
    {"userName": LONG + "@example.com"},
    {"externalId": LONG},
    {"displayName": LONG},
])
def test_a_user_with_a_value_too_long_to_store_is_refused(
    services: Services, attributes: dict[str, Any]
) -> None:
    acme = services.tenant("acme")
    body = {"schemas": [USER_SCHEMA], "userName": "ok@example.com", **attributes}
    with pytest.raises(InvalidValue, match="longer than 512"):
        services.writes.create(acme, "User", body, request_id="t")
    assert _journaled(services) == 0


def test_values_of_exactly_the_column_length_are_accepted_and_applied(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    user = services.user(acme, LONGEST, externalId=LONGEST, displayName=LONGEST)
    group = services.group(acme, LONGEST, members=[user])
    services.drain()
    assert services.reads.get(acme, "Group", group).resource.data["displayName"] == LONGEST


def test_a_group_member_display_too_long_to_store_is_refused(services: Services) -> None:
    acme = services.tenant("acme")
    user = services.user(acme, "member@example.com")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Sales",
            "members": [{"value": user, "display": LONG}]}
    with pytest.raises(InvalidValue, match=r"members\.display"):
        services.writes.create(acme, "Group", body, request_id="t")
    group = services.group(acme, "Support")
    add = patch_body({"op": "add", "path": "members", "value": [{"value": user, "display": LONG}]})
    with pytest.raises(InvalidValue, match=r"members\.display"):
        services.writes.patch(acme, "Group", group, add, if_match=None, request_id="t")


def test_a_replace_or_patch_to_a_value_too_long_is_refused(services: Services) -> None:
    acme = services.tenant("acme")
    user = services.user(acme, "short@example.com")
    with pytest.raises(InvalidValue):
        services.writes.replace(acme, "User", user, {"schemas": [USER_SCHEMA], "userName": LONG},
                                if_match=None, request_id="t")
    rename = patch_body({"op": "replace", "path": "displayName", "value": LONG})
    with pytest.raises(InvalidValue):
        services.writes.patch(acme, "User", user, rename, if_match=None, request_id="t")
    assert _journaled(services) == 1  # only the create
