"""The read path against real databases: GET by id and searches (RFC 7644 §3.4).

Every test runs on SQLite and on PostgreSQL (see conftest.py). Writes go through the real
write path; only where a test says so are they applied by a drain, so the other tests prove
read-your-writes: what was acknowledged is readable before any worker ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from scimflow.pipeline.errors import InvalidFilter, InvalidValue, NotFound
from scimflow.pipeline.scim.evaluate import matches
from scimflow.pipeline.scim.filters import parse_filter
from scimflow.pipeline.scim.protocol import default_protocol
from scimflow.pipeline.services import reads
from scimflow.pipeline.services.reads import Found, SearchPage, SearchQuery
from scimflow.pipeline.store import search
from scimflow.pipeline.store.models import User
from scimflow.pipeline.store.tenants import TenantRef
from tests.conftest import patch_body
from tests.integration.conftest import Services


def names(page: SearchPage, attribute: str = "userName") -> list[str]:
    return [item.resource.data[attribute] for item in page.items]


def find(services: Services, tenant: TenantRef, type_name: str, **query: Any) -> SearchPage:
    return services.reads.search(tenant, type_name, SearchQuery(**query))


def applied_users(services: Services) -> int:
    with services.sessions.begin() as session:
        return int(session.execute(select(func.count()).select_from(User)).scalar_one())


def view(found: Found) -> dict[str, Any]:
    """What a filter sees of a resource: its data plus `id` and `meta` timestamps."""
    resource = found.resource
    return {
        **found.data(),
        "id": resource.id,
        "meta": {
            "created": resource.created_at.isoformat(),
            "lastModified": resource.updated_at.isoformat(),
        },
    }


# --- GET by id and read-your-writes ----------------------------------------------------------


def test_a_created_user_is_readable_by_id_before_any_worker_ran(services: Services) -> None:
    acme = services.tenant("acme")
    user_id = services.user(acme, "Alice@Example.com", externalId="ext-1")

    found = services.reads.get(acme, "User", user_id)

    assert found.resource.id == user_id
    assert found.resource.data["userName"] == "Alice@Example.com"
    assert found.resource.version == 1
    assert found.groups == []
    assert found.resource.created_at.tzinfo is not None
    assert applied_users(services) == 0
    assert services.dispatcher.rings == [(acme.id, False)]


def test_new_resources_are_found_by_their_keys_before_any_worker_ran(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    user_id = services.user(acme, "Alice@Example.com", externalId="Ext-1")
    group_id = services.group(acme, "Engineering")

    by_user_name = find(services, acme, "User", filter='userName eq "alice@EXAMPLE.com"')
    by_external_id = find(services, acme, "User", filter='externalId eq "Ext-1"')
    by_wrong_case_external_id = find(services, acme, "User", filter='externalId eq "ext-1"')
    by_display_name = find(services, acme, "Group", filter='displayName eq "ENGINEERING"')

    assert [i.resource.id for i in by_user_name.items] == [user_id]
    assert by_user_name.total_results == 1
    assert [i.resource.id for i in by_external_id.items] == [user_id]
    assert by_wrong_case_external_id.total_results == 0  # externalId is caseExact
    assert [i.resource.id for i in by_display_name.items] == [group_id]
    assert applied_users(services) == 0


def test_get_is_404_for_an_unknown_id_another_type_or_another_tenant(
    services: Services,
) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    user_id = services.user(acme, "alice")

    with pytest.raises(NotFound):
        services.reads.get(acme, "User", "no-such-id")
    with pytest.raises(NotFound):
        services.reads.get(acme, "Group", user_id)
    with pytest.raises(NotFound):
        services.reads.get(globex, "User", user_id)
    with pytest.raises(NotFound):
        services.reads.get(acme, "Printer", user_id)


def test_updates_and_deletes_are_visible_before_any_worker_ran(services: Services) -> None:
    acme = services.tenant("acme")
    alice = services.user(acme, "alice")
    bob = services.user(acme, "bob")
    rename = patch_body({"op": "replace", "path": "userName", "value": "alicia"})
    services.writes.patch(acme, "User", alice, rename, if_match=None, request_id="t")
    services.writes.delete(acme, "User", bob, if_match=None, request_id="t")

    assert services.reads.get(acme, "User", alice).resource.version == 2
    assert names(find(services, acme, "User", filter='userName eq "alicia"')) == ["alicia"]
    assert find(services, acme, "User", filter='userName eq "alice"').total_results == 0
    with pytest.raises(NotFound):
        services.reads.get(acme, "User", bob)
    assert names(find(services, acme, "User")) == ["alicia"]


# --- Tenants ---------------------------------------------------------------------------------


def test_a_tenant_never_sees_another_tenants_resources(services: Services) -> None:
    acme, globex = services.tenant("acme"), services.tenant("globex")
    acme_user = services.user(acme, "shared", externalId="same", title="Boss")
    acme_group = services.group(acme, "Shared", [acme_user])
    globex_user = services.user(globex, "shared", externalId="same", title="Boss")
    services.drain()

    with pytest.raises(NotFound):
        services.reads.get(globex, "User", acme_user)
    with pytest.raises(NotFound):
        services.reads.get(globex, "Group", acme_group)
    for filter_text in ('userName eq "shared"', 'externalId eq "same"', None, "title pr"):
        page = find(services, globex, "User", filter=filter_text)
        assert [i.resource.id for i in page.items] == [globex_user], filter_text
        assert page.total_results == 1
    assert find(services, globex, "Group").total_results == 0
    assert find(services, globex, "Group", filter='displayName eq "Shared"').items == []
    assert services.reads.get(globex, "User", globex_user).groups == []


# --- Pagination (RFC 7644 §3.4.2.4) ----------------------------------------------------------


@dataclass
class Directory:
    tenant: TenantRef
    ids: list[str]  # in creation order


@pytest.fixture
def twenty_five(services: Services) -> Directory:
    acme = services.tenant("acme")
    ids = [
        services.user(acme, f"user{n:02d}", **({"title": "Engineer"} if n % 3 == 0 else {}))
        for n in range(25)
    ]
    return Directory(acme, ids)


def test_pages_walk_every_user_once_in_creation_order(
    services: Services, twenty_five: Directory
) -> None:
    pages = [
        find(services, twenty_five.tenant, "User", start_index=start, count=10)
        for start in (1, 11, 21)
    ]

    assert [p.total_results for p in pages] == [25, 25, 25]
    assert [p.start_index for p in pages] == [1, 11, 21]
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [i.resource.id for p in pages for i in p.items] == twenty_five.ids


def test_count_zero_returns_only_the_total(services: Services, twenty_five: Directory) -> None:
    page = find(services, twenty_five.tenant, "User", count=0)
    in_memory = find(services, twenty_five.tenant, "User", count=0, filter="title pr")

    assert (page.total_results, page.items) == (25, [])
    assert (in_memory.total_results, in_memory.items) == (9, [])


def test_start_index_below_one_is_one_and_a_negative_count_is_zero(
    services: Services, twenty_five: Directory
) -> None:
    from_zero = find(services, twenty_five.tenant, "User", start_index=0, count=2)
    negative = find(services, twenty_five.tenant, "User", start_index=-4, count=-1)

    assert from_zero.start_index == 1
    assert [i.resource.id for i in from_zero.items] == twenty_five.ids[:2]
    assert (negative.start_index, negative.total_results, negative.items) == (1, 25, [])


def test_a_start_index_past_the_end_gives_an_empty_page_and_the_total(
    services: Services, twenty_five: Directory
) -> None:
    page = find(services, twenty_five.tenant, "User", start_index=26, count=10)

    assert (page.total_results, page.start_index, page.items) == (25, 26, [])


def test_no_page_is_larger_than_max_results(services: Services, twenty_five: Directory) -> None:
    reader = services.reader(max_results=10)

    unbounded = reader.search(twenty_five.tenant, "User", SearchQuery())
    too_many = reader.search(twenty_five.tenant, "User", SearchQuery(count=50, start_index=21))

    assert (unbounded.total_results, len(unbounded.items)) == (25, 10)
    assert (too_many.total_results, len(too_many.items)) == (25, 5)


def test_a_filter_evaluated_in_memory_pages_with_an_exact_total(
    services: Services, twenty_five: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "SCAN_CHUNK", 4)  # several chunks, pages across their edges
    engineers = [user_id for n, user_id in enumerate(twenty_five.ids) if n % 3 == 0]

    pages = [
        find(services, twenty_five.tenant, "User", filter="title pr", start_index=s, count=4)
        for s in (1, 5, 9)
    ]

    assert [p.total_results for p in pages] == [9, 9, 9]
    assert [len(p.items) for p in pages] == [4, 4, 1]
    assert [i.resource.id for p in pages for i in p.items] == engineers


# --- Sorting (RFC 7644 §3.4.2.3) -------------------------------------------------------------


@pytest.fixture
def people(services: Services) -> TenantRef:
    acme = services.tenant("acme")
    services.user(acme, "bob", externalId="b", displayName="Zed", name={"familyName": "Young"})
    services.user(acme, "Alice", displayName="yann", name={"familyName": "adams"})
    services.user(acme, "carol", externalId="A", displayName="Xavier")
    services.user(acme, "dave", externalId="c", name={"familyName": "Brown"})
    return acme


@pytest.mark.parametrize(
    ("sort_by", "ascending"),
    [
        ("userName", ["Alice", "bob", "carol", "dave"]),  # caseExact false: case-insensitive
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName", ["Alice", "bob", "carol", "dave"]),
        ("externalId", ["carol", "bob", "dave", "Alice"]),  # code point order; absent last
        ("meta.created", ["bob", "Alice", "carol", "dave"]),
        ("displayName", ["carol", "Alice", "bob", "dave"]),  # in memory, case-insensitive
        ("name.familyName", ["Alice", "dave", "bob", "carol"]),  # in memory
    ],
)
def test_sort_ascending_and_descending(
    services: Services, people: TenantRef, sort_by: str, ascending: list[str]
) -> None:
    up = find(services, people, "User", sort_by=sort_by)
    down = find(services, people, "User", sort_by=sort_by, sort_order="descending")

    assert names(up) == ascending
    assert names(down) == _descending(ascending, sort_by)
    assert up.total_results == down.total_results == 4


def _descending(ascending: list[str], sort_by: str) -> list[str]:
    # Resources without a value come last ascending and first descending (RFC 7644 §3.4.2.3).
    absent = {"externalId": ["Alice"], "displayName": ["dave"], "name.familyName": ["carol"]}
    missing = absent.get(sort_by, [])
    present = [name for name in ascending if name not in missing]
    return missing + present[::-1]


def test_pages_of_an_in_memory_sort(services: Services, twenty_five: Directory) -> None:
    pages = [
        find(
            services,
            twenty_five.tenant,
            "User",
            sort_by="title",
            sort_order="descending",
            start_index=start,
            count=10,
        )
        for start in (1, 11, 21)
    ]

    untitled = [user_id for n, user_id in enumerate(twenty_five.ids) if n % 3]
    engineers = [user_id for n, user_id in enumerate(twenty_five.ids) if n % 3 == 0]
    assert [p.total_results for p in pages] == [25, 25, 25]
    # Absent titles first when descending; ties keep the stable creation order.
    assert [i.resource.id for p in pages for i in p.items] == untitled + engineers


@pytest.mark.parametrize("sort_by", ["nickname.value", "name", "emails.nope", "urn:bad urn"])
def test_an_unknown_or_complex_sort_attribute_is_an_invalid_value(
    services: Services, sort_by: str
) -> None:
    acme = services.tenant("acme")

    with pytest.raises(InvalidValue):
        find(services, acme, "User", sort_by=sort_by)


# --- Filters: every operator on the translatable attributes ----------------------------------


@pytest.fixture
def keyed(services: Services) -> TenantRef:
    """Users whose keys exercise case, LIKE wildcards and code-point order."""
    acme = services.tenant("acme")
    services.user(acme, "alice", externalId="A-1")
    services.user(acme, "Bob", externalId="a-2")
    services.user(acme, "carol_x")
    services.user(acme, "dave%", externalId="B/3")
    services.user(acme, "Eve", externalId="b_4")
    return acme


EVERYONE = ["alice", "Bob", "carol_x", "dave%", "Eve"]

TRANSLATABLE_USER_FILTERS = [
    ('userName eq "ALICE"', ["alice"]),
    ('userName ne "alice"', ["Bob", "carol_x", "dave%", "Eve"]),
    ('userName co "A"', ["alice", "carol_x", "dave%"]),
    ('userName sw "b"', ["Bob"]),
    ('userName ew "E"', ["alice", "Eve"]),
    ('userName co "_"', ["carol_x"]),  # a LIKE wildcard, escaped
    ('userName ew "%"', ["dave%"]),
    ('userName sw "%"', []),
    ('userName gt "c"', ["carol_x", "dave%", "Eve"]),
    ('userName ge "CAROL_X"', ["carol_x", "dave%", "Eve"]),
    ('userName lt "bob"', ["alice"]),
    ('userName le "BOB"', ["alice", "Bob"]),
    ("userName pr", EVERYONE),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "eve"', ["Eve"]),
    ('externalId eq "a-2"', ["Bob"]),
    ('externalId eq "A-2"', []),  # caseExact
    ('externalId ne "A-1"', ["Bob", "carol_x", "dave%", "Eve"]),  # absent is "not equal"
    ('externalId co "-"', ["alice", "Bob"]),
    ('externalId sw "a"', ["Bob"]),  # caseExact, also on SQLite whose LIKE ignores case
    ('externalId ew "_4"', ["Eve"]),
    ('externalId co "/"', ["dave%"]),  # the LIKE escape character itself
    ('externalId co ""', ["alice", "Bob", "dave%", "Eve"]),
    ('externalId gt "B"', ["Bob", "dave%", "Eve"]),  # code point: "B/3" > "B", "a" > "B"
    ('externalId ge "b_4"', ["Eve"]),
    ('externalId lt "B/3"', ["alice"]),
    ('externalId le "B/3"', ["alice", "dave%"]),
    ("externalId pr", ["alice", "Bob", "dave%", "Eve"]),
    ("externalId eq null", ["carol_x"]),
    ("externalId ne null", ["alice", "Bob", "dave%", "Eve"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:externalId eq "b_4"', ["Eve"]),
    ('not (externalId eq "A-1")', ["Bob", "carol_x", "dave%", "Eve"]),  # NULL-safe not
    ('not (externalId gt "a")', ["alice", "carol_x", "dave%"]),
    ('userName sw "a" or externalId eq "b_4"', ["alice", "Eve"]),
    ('userName co "a" and not (externalId pr)', ["carol_x"]),
    ('not (userName eq "x")', EVERYONE),
    ('userName eq "alice" and userName eq "bob"', []),
    ("id pr", EVERYONE),
    ("meta.created pr and meta.lastModified pr", EVERYONE),
]


@pytest.mark.parametrize(("filter_text", "expected"), TRANSLATABLE_USER_FILTERS)
def test_translatable_filters_run_in_sql_and_agree_with_the_in_memory_evaluator(
    services: Services, keyed: TenantRef, filter_text: str, expected: list[str]
) -> None:
    page = find(services, keyed, "User", filter=filter_text)

    assert names(page) == expected
    assert page.total_results == len(expected)
    _assert_translated_exactly(filter_text, "User")
    _assert_evaluator_agrees(services, keyed, "User", filter_text, page)


def test_id_comparisons(services: Services, keyed: TenantRef) -> None:
    everyone = find(services, keyed, "User").items
    alice, bob = everyone[0].resource.id, everyone[1].resource.id
    cases = {
        f'id eq "{alice}"': ["alice"],
        f'id ne "{alice}"': EVERYONE[1:],
        f'id co "{bob[4:20]}"': ["Bob"],
        f'id sw "{bob[:30]}"': ["Bob"],
        f'id ew "{bob[-30:]}"': ["Bob"],
        f'id eq "{alice.upper()}"': [],  # id is caseExact
        f'urn:ietf:params:scim:schemas:core:2.0:User:id eq "{bob}"': ["Bob"],
    }
    for filter_text, expected in cases.items():
        assert names(find(services, keyed, "User", filter=filter_text)) == expected, filter_text
        _assert_translated_exactly(filter_text, "User")


def test_meta_timestamp_comparisons(services: Services, keyed: TenantRef) -> None:
    carol = find(services, keyed, "User", filter='userName eq "carol_x"').items[0].resource
    at = carol.created_at.astimezone(UTC)
    in_paris = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    cases = {
        f'meta.created eq "{at.isoformat()}"': ["carol_x"],
        f'meta.created eq "{in_paris}"': ["carol_x"],  # the same instant, another offset
        f'meta.created ne "{at.isoformat()}"': ["alice", "Bob", "dave%", "Eve"],
        f'meta.created gt "{at.isoformat()}"': ["dave%", "Eve"],
        f'meta.created ge "{at.isoformat()}"': ["carol_x", "dave%", "Eve"],
        f'meta.created lt "{at.isoformat()}"': ["alice", "Bob"],
        f'meta.created le "{at.strftime("%Y-%m-%dT%H:%M:%S")}"': ["alice", "Bob", "carol_x"],
        f'meta.lastModified gt "{at.isoformat()}"': ["dave%", "Eve"],
        f'urn:ietf:params:scim:schemas:core:2.0:User:meta.created lt "{in_paris}"': [
            "alice",
            "Bob",
        ],
    }
    for filter_text, expected in cases.items():
        page = find(services, keyed, "User", filter=filter_text)
        assert names(page) == expected, filter_text
        _assert_translated_exactly(filter_text, "User")
        _assert_evaluator_agrees(services, keyed, "User", filter_text, page)


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('displayName eq "ENGINEERING"', ["Engineering"]),
        ('displayName ne "engineering"', ["Sales_EU", "sales%"]),
        ('displayName sw "sales"', ["Sales_EU", "sales%"]),
        ('displayName co "_"', ["Sales_EU"]),
        ('displayName ew "%"', ["sales%"]),
        ('displayName gt "S"', ["Sales_EU", "sales%"]),
        ('displayName le "ENGINEERING"', ["Engineering"]),
        ("displayName pr", ["Engineering", "Sales_EU", "sales%"]),
        ('urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "sales_eu"', ["Sales_EU"]),
        ('not (displayName co "sales")', ["Engineering"]),
    ],
)
def test_group_display_name_filters(
    services: Services, filter_text: str, expected: list[str]
) -> None:
    acme = services.tenant("acme")
    for display_name in ("Engineering", "Sales_EU", "sales%"):
        services.group(acme, display_name)

    page = find(services, acme, "Group", filter=filter_text)

    assert names(page, "displayName") == expected
    _assert_translated_exactly(filter_text, "Group")


def _assert_translated_exactly(filter_text: str, type_name: str) -> None:
    resource_type = default_protocol().resource_type(type_name)
    for dialect in ("sqlite", "postgresql"):
        translation = search.translate(parse_filter(filter_text), resource_type, dialect=dialect)
        assert translation.exact, (filter_text, dialect)


def _assert_evaluator_agrees(
    services: Services, tenant: TenantRef, type_name: str, filter_text: str, page: SearchPage
) -> None:
    """SQL and `evaluate.matches` must select the same resources."""
    resource_type = default_protocol().resource_type(type_name)
    parsed = parse_filter(filter_text)
    everyone = find(services, tenant, type_name).items
    expected = [f.resource.id for f in everyone if matches(parsed, view(f), resource_type)]
    assert [item.resource.id for item in page.items] == expected, filter_text


# --- Filters partly or wholly evaluated in memory --------------------------------------------


@pytest.fixture
def staff(services: Services) -> TenantRef:
    acme = services.tenant("acme")

    def email(kind: str, address: str) -> list[dict[str, str]]:
        return [{"type": kind, "value": address}]

    services.user(acme, "anna", emails=email("work", "anna@x.com"), title="CTO")
    services.user(acme, "alex", emails=email("work", "alex@y.com"), active=False)
    services.user(acme, "amy", emails=email("home", "amy@x.com"))
    services.user(acme, "bart", emails=email("work", "bart@x.com"), active=True)
    services.user(acme, "Abe", emails=email("work", "ABE@X.COM"), title="")
    services.user(acme, "x", active=False)
    return acme


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        (
            'userName sw "a" and emails[type eq "work" and value co "@x.com"]',
            ["anna", "Abe"],  # emails.value is caseExact false
        ),
        ("title pr or active eq false", ["anna", "alex", "x"]),
        ('not (userName eq "x")', ["anna", "alex", "amy", "bart", "Abe"]),
        ('not (userName eq "x" or emails[type eq "home"])', ["anna", "alex", "bart", "Abe"]),
        ('emails.type eq "work" and not (active eq false)', ["anna", "bart", "Abe"]),
        (
            'userName sw "a" or userName eq "bart" and active eq true',
            ["anna", "alex", "amy", "bart", "Abe"],
        ),
        ('emails co "X.COM" and externalId eq null', ["anna", "amy", "bart", "Abe"]),
    ],
)
def test_mixed_filters_are_exact_in_results_and_totals(
    services: Services, staff: TenantRef, filter_text: str, expected: list[str]
) -> None:
    everything = find(services, staff, "User", filter=filter_text)
    first = find(services, staff, "User", filter=filter_text, count=1)
    second = find(services, staff, "User", filter=filter_text, count=1, start_index=2)

    assert names(everything) == expected
    assert everything.total_results == first.total_results == len(expected)
    assert names(first) + names(second) == expected[:2]
    _assert_evaluator_agrees(services, staff, "User", filter_text, everything)
    resource_type = default_protocol().resource_type("User")
    translation = search.translate(parse_filter(filter_text), resource_type, dialect="sqlite")
    if "emails" in filter_text or "title" in filter_text or "active" in filter_text:
        assert not translation.exact


def test_translation_keeps_the_sql_part_of_a_partly_translatable_filter() -> None:
    user = default_protocol().resource_type("User")
    mixed = parse_filter('userName sw "a" and emails[type eq "work"]')
    either = parse_filter('title pr or userName eq "a"')
    negated = parse_filter('not (title pr and userName eq "a")')

    narrowed = search.translate(mixed, user, dialect="postgresql")
    assert narrowed.condition is not None and not narrowed.exact
    assert search.translate(either, user, dialect="postgresql") == search.EVERYTHING
    assert search.translate(negated, user, dialect="postgresql") == search.EVERYTHING


# --- Memberships (applied state) -------------------------------------------------------------


def test_group_members_and_user_groups_come_from_the_applied_memberships(
    services: Services,
) -> None:
    acme = services.tenant("acme")
    ann, ben = services.user(acme, "ann"), services.user(acme, "ben")
    admins = services.group(acme, "Admins", [ann, ben])
    staff = services.group(acme, "Staff", [ann])

    # Read-your-writes: acknowledged members show before any worker applied them.
    before = services.reads.get(acme, "Group", admins).members or []
    assert sorted((m["value"], m["type"]) for m in before) == sorted(
        [(ann, "User"), (ben, "User")]
    )
    services.drain()

    members = services.reads.get(acme, "Group", admins).members or []
    assert sorted(m["value"] for m in members) == sorted([ann, ben])
    assert all(m["type"] == "User" for m in members)
    groups = services.reads.get(acme, "User", ann).groups or []
    assert sorted((g["value"], g["display"]) for g in groups) == sorted(
        [(admins, "Admins"), (staff, "Staff")]
    )
    assert services.reads.get(acme, "User", ann, with_memberships=False).groups is None
    page = find(services, acme, "Group", sort_by="displayName")
    assert [len(item.members or []) for item in page.items] == [2, 1]
    assert "members" in page.items[0].data()
    lean = find(services, acme, "Group", with_memberships=False)
    assert [item.members for item in lean.items] == [None, None]


def test_membership_attributes_filter_on_the_applied_memberships(services: Services) -> None:
    acme = services.tenant("acme")
    ann, ben = services.user(acme, "ann"), services.user(acme, "ben")
    admins = services.group(acme, "Admins", [ann, ben])
    services.group(acme, "Staff", [ann])
    services.user(acme, "cid")
    by_member = f'members[value eq "{ben}"]'

    assert find(services, acme, "Group", filter=by_member).total_results == 0  # not applied
    services.drain()

    assert [i.resource.id for i in find(services, acme, "Group", filter=by_member).items] == [
        admins
    ]
    in_admins = find(services, acme, "User", filter=f'groups.value eq "{admins}"')
    assert names(in_admins) == ["ann", "ben"]
    assert names(find(services, acme, "User", filter="not (groups pr)")) == ["cid"]
    assert names(find(services, acme, "Group", filter="members pr"), "displayName") == [
        "Admins",
        "Staff",
    ]


def test_a_page_loads_memberships_in_one_query_whatever_its_size(
    services: Services, statements: list[str]
) -> None:
    acme = services.tenant("acme")
    users = [services.user(acme, f"user{n}") for n in range(3)]
    for n in range(50):
        services.group(acme, f"group{n:02d}", users[: 1 + n % 3])
    services.drain()

    def statements_for(type_name: str, count: int) -> int:
        statements.clear()
        page = find(services, acme, type_name, count=count)
        assert len(page.items) == min(count, page.total_results)
        return len(statements)

    group_page_of_1, group_page_of_50 = statements_for("Group", 1), statements_for("Group", 50)
    user_page_of_1, user_page_of_3 = statements_for("User", 1), statements_for("User", 3)
    # counted page, members, and one probe for unapplied member changes (read-your-writes)
    assert group_page_of_1 == group_page_of_50 == 3
    assert user_page_of_1 == user_page_of_3 == 2  # counted page, groups


# --- Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "filter_text"),
    [
        ("User", "userName eq"),
        ("User", 'userName xx "a"'),
        ("User", '(userName eq "a"'),
        ("User", ""),
        ("User", 'nope eq "a"'),
        ("User", "userName gt 5"),
        ("User", "active gt true"),
        ("User", 'meta.created gt "yesterday"'),
        ("User", 'members[value eq "x"]'),
        ("User", 'urn:example:unknown:1.0:User:userName eq "a"'),
        ("Group", 'userName eq "a"'),
        ("Group", "displayName co null"),
    ],
)
def test_bad_filters_are_invalid_filter(
    services: Services, type_name: str, filter_text: str
) -> None:
    acme = services.tenant("acme")
    services.user(acme, "alice")

    with pytest.raises(InvalidFilter):
        find(services, acme, type_name, filter=filter_text)


def test_an_unknown_resource_type_is_not_found(services: Services) -> None:
    acme = services.tenant("acme")

    with pytest.raises(NotFound):
        find(services, acme, "Printer")
