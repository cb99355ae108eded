"""The read path: resources by id and searches, with read-your-writes.

Searches run in the database when it can decide the filter exactly (`pipeline.store.search`:
one `count(*)`, one paged query); otherwise candidates stream in order and the filter is
evaluated in memory on the canonical resource, with `id` and `meta` added as they render.
See docs/ARCHITECTURE.md ("The path of a read").
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, Literal

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.apply import project_members
from scimflow.pipeline.commands import MEMBERS, Command
from scimflow.pipeline.errors import NotFound
from scimflow.pipeline.scim.evaluate import check_filter, matches
from scimflow.pipeline.scim.filters import And, Filter, Not, Or, chain_operands, parse_filter
from scimflow.pipeline.scim.meta import scim_datetime, weak_etag
from scimflow.pipeline.scim.paths import AttrPath
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.services.tenant_protocols import ProtocolSource, as_protocol_source
from scimflow.pipeline.store import acknowledged, directory, journal, unique_lookup
from scimflow.pipeline.store import search as store_search
from scimflow.pipeline.store.acknowledged import AcknowledgedResource
from scimflow.pipeline.store.db import autocommit_sessions, is_postgres, unit_of_work
from scimflow.pipeline.store.search import Sort
from scimflow.pipeline.store.tenants import TenantRef

log = logging.getLogger(__name__)

# Rows fetched per round trip while a filter is evaluated in memory.
SCAN_CHUNK: Final = 500

MembershipLoader = Callable[[Session, str, Collection[str]], dict[str, list[dict[str, Any]]]]

# The read-only attribute each resource type derives from the applied memberships.
MEMBERSHIP_ATTRIBUTES: Final[dict[str, tuple[str, MembershipLoader]]] = {
    "Group": (MEMBERS, directory.members_by_group),
    "User": ("groups", directory.groups_of_users),
}


@dataclass(frozen=True, slots=True)
class Found:
    """A resource to render: acknowledged data plus the membership attributes asked for."""

    resource: AcknowledgedResource
    members: list[dict[str, Any]] | None = None  # Group.members, when requested
    groups: list[dict[str, Any]] | None = None  # User.groups, when requested

    def data(self) -> dict[str, Any]:
        """The canonical resource, membership attributes included."""
        out = dict(self.resource.data)
        if self.members:
            out[MEMBERS] = self.members
        if self.groups:
            out["groups"] = self.groups
        return out


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """RFC 7644 §3.4.2 query parameters, already parsed from the request."""

    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    sort_by: str | None = None
    sort_order: Literal["ascending", "descending"] = "ascending"
    with_memberships: bool = True


@dataclass(frozen=True, slots=True)
class SearchPage:
    total_results: int
    start_index: int
    items: list[Found]


@dataclass(frozen=True, slots=True)
class Window:
    """The page asked for (RFC 7644 §3.4.2.4), normalised: `start` is 1-based."""

    start: int
    count: int

    @property
    def offset(self) -> int:
        return self.start - 1

    @property
    def end(self) -> int:
        return self.offset + self.count


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A resource being searched, and the view the filter and the sort see."""

    resource: AcknowledgedResource
    view: dict[str, Any]


class ReadService:
    """Serves GET by id and searches for the API."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        protocol: ScimProtocol | ProtocolSource,
        *,
        max_results: int = 1000,
    ) -> None:
        # Reads commit nothing: each statement runs on its own, without BEGIN/COMMIT round
        # trips, except a scan, which asks for one REPEATABLE READ snapshot.
        self._sessions = autocommit_sessions(sessions)
        self._protocols = as_protocol_source(protocol)
        self._max_results = max_results

    def get(
        self,
        tenant: TenantRef,
        type_name: str,
        resource_id: str,
        *,
        with_memberships: bool = True,
    ) -> Found:
        """GET /{type}/{id} (RFC 7644 §3.4.1): 404 if absent, of another type or tenant."""
        protocol = self._protocols.for_tenant(tenant.id)
        resource_type = protocol.resource_type(type_name)
        with unit_of_work(self._sessions) as session:
            resource = acknowledged.get(session, tenant.id, resource_type.name, resource_id)
            if resource is None:
                raise NotFound(f"{resource_type.name} {resource_id} not found.")
            found = _with_memberships(
                session,
                protocol,
                tenant.id,
                resource_type.name,
                [resource],
                wanted=with_memberships,
            )
        return found[0]

    def search(self, tenant: TenantRef, type_name: str, query: SearchQuery) -> SearchPage:
        """GET /{type}?filter=... (RFC 7644 §3.4.2), with an exact `totalResults`.

        Raises InvalidFilter for a filter that does not parse or names what the resource type
        lacks, and InvalidValue for an unknown `sortBy`.
        """
        protocol = self._protocols.for_tenant(tenant.id)
        resource_type = protocol.resource_type(type_name)
        parsed = _checked_filter(query.filter, resource_type)
        sort = store_search.resolve_sort(query.sort_by, query.sort_order, resource_type)
        window = self.window(query)
        with unit_of_work(self._sessions) as session:
            total, resources = _matching_page(
                session,
                tenant_id=tenant.id,
                resource_type=resource_type,
                parsed=parsed,
                sort=sort,
                window=window,
            )
            items = _with_memberships(
                session,
                protocol,
                tenant.id,
                resource_type.name,
                resources,
                wanted=query.with_memberships,
            )
        return SearchPage(total, window.start, items)

    def window(self, query: SearchQuery) -> Window:
        """RFC 7644 §3.4.2.4: startIndex < 1 is 1; count absent is the maximum, negative is 0,
        and no page is larger than `max_results`."""
        wanted = self._max_results if query.count is None else query.count
        return Window(max(1, query.start_index), max(0, min(wanted, self._max_results)))


def _checked_filter(text: str | None, resource_type: ResourceType) -> Filter | None:
    if text is None:
        return None
    parsed = parse_filter(text)
    check_filter(parsed, resource_type)
    return parsed


def _read_one_snapshot(session: Session) -> None:
    """Scan, count and load memberships from one snapshot, so `totalResults` agrees with the
    page (the SQL-only path needs none: it is one statement).

    REPEATABLE READ costs a read-only transaction nothing on PostgreSQL (only writers can
    fail to serialise). On SQLite, the single-machine mode, a write committed between the
    count and the page can still make them differ by that write; a scan counts and pages
    from one statement on both.
    """
    if is_postgres(session):
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})



def _matching_page(
    session: Session,
    *,
    tenant_id: str,
    resource_type: ResourceType,
    parsed: Filter | None,
    sort: Sort,
    window: Window,
) -> tuple[int, list[AcknowledgedResource]]:
    """totalResults and the page: in SQL when it decides the filter and the order exactly."""
    key = unique_lookup.unique_key(parsed, resource_type)
    if key is not None:  # at most one match: its order and the count are trivial
        found = unique_lookup.find(session, tenant_id, resource_type.name, key)
        return len(found), found if window.offset == 0 and window.count > 0 else []
    dialect = session.get_bind().dialect.name
    translation = (
        store_search.NO_FILTER
        if parsed is None
        else store_search.translate(parsed, resource_type, dialect=dialect)
    )
    statement = store_search.candidates(tenant_id, resource_type.name, translation.condition)
    statement = statement.order_by(*sort.order_by(dialect))
    if translation.exact and sort.in_sql:
        return _page_in_sql(session, statement, window)
    _read_one_snapshot(session)
    scan = _Scan(
        session,
        tenant_id=tenant_id,
        resource_type=resource_type,
        filter_=None if translation.exact else parsed,
        sort=sort,
    )
    return scan.page(statement, window)


def _page_in_sql(
    session: Session, statement: Select[Any], window: Window
) -> tuple[int, list[AcknowledgedResource]]:
    # An IdP's existence check is one statement: the page carries its own total.
    if window.count > 0:
        total, resources = store_search.counted_page(
            session, statement, offset=window.offset, limit=window.count
        )
        if total is not None:
            return total, resources
        if window.offset == 0:
            return 0, []  # an empty first page: nothing matches (the usual existence check)
    return store_search.count(session, statement), []


class _Scan:
    """Streams candidates in order and keeps the page of those the filter really matches."""

    def __init__(
        self,
        session: Session,
        *,
        tenant_id: str,
        resource_type: ResourceType,
        filter_: Filter | None,
        sort: Sort,
    ) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._resource_type = resource_type
        self._filter = filter_  # None when the SQL condition already is the exact match set
        self._sort = sort
        self._membership_loader = self._loader_if_needed()

    def page(
        self, statement: Select[Any], window: Window
    ) -> tuple[int, list[AcknowledgedResource]]:
        matching = _Tally(self._matching(statement))
        if self._sort.in_sql:
            kept = list(islice(matching, window.offset, window.end))
        else:
            kept = self._best(matching, window.end)[window.offset :]
        deque(matching, maxlen=0)  # count the rest: totalResults is exact
        return matching.count, [candidate.resource for candidate in kept]

    def _best(self, matching: Iterable[_Candidate], size: int) -> list[_Candidate]:
        # Equivalent to sorted(...)[:size], stable, holding at most `size` candidates.
        pick = heapq.nlargest if self._sort.descending else heapq.nsmallest
        return pick(size, matching, key=lambda candidate: self._sort.key(candidate.view))

    def _matching(self, statement: Select[Any]) -> Iterator[_Candidate]:
        for chunk in store_search.stream(self._session, statement, chunk=SCAN_CHUNK):
            for candidate in self._candidates(chunk):
                if self._filter is None or matches(
                    self._filter, candidate.view, self._resource_type
                ):
                    yield candidate

    def _candidates(self, chunk: list[AcknowledgedResource]) -> list[_Candidate]:
        views = [_view(resource) for resource in chunk]
        if self._membership_loader is not None:
            name, load = self._membership_loader
            loaded = load(self._session, self._tenant_id, [r.id for r in chunk])
            for resource, view in zip(chunk, views, strict=True):
                view[name] = loaded.get(resource.id, [])
        return [_Candidate(r, view) for r, view in zip(chunk, views, strict=True)]

    def _loader_if_needed(self) -> tuple[str, MembershipLoader] | None:
        """The membership attribute to load, when the filter or the sort names it."""
        membership = MEMBERSHIP_ATTRIBUTES.get(self._resource_type.name)
        if membership is None:
            return None
        name = membership[0]
        core = self._resource_type.schema.id
        named = _names_attribute(self._filter, name, core) or _sort_names(self._sort, name)
        return membership if named else None


def _names_attribute(f: Filter | None, name: str, core_urn: str) -> bool:
    """Whether any path of the filter starts at the core attribute `name`."""
    pending: list[Filter] = [] if f is None else [f]
    while pending:
        node = pending.pop()
        if isinstance(node, And | Or):
            pending.extend(chain_operands(node))
        elif isinstance(node, Not):
            pending.append(node.inner)
        elif _is_core_path(node.path, name, core_urn):
            return True
    return False


def _is_core_path(path: AttrPath, name: str, core_urn: str) -> bool:
    in_core = path.urn is None or path.urn.lower() == core_urn.lower()
    return in_core and path.name.lower() == name.lower()


def _sort_names(sort: Sort, name: str) -> bool:
    return sort.top is not None and sort.container is None and sort.top.name == name


def _view(resource: AcknowledgedResource) -> dict[str, Any]:
    """What a filter or sortBy sees: the canonical data plus `id` and `meta` (RFC 7643 §3.1)."""
    view = dict(resource.data)
    view["id"] = resource.id
    view["meta"] = {
        "resourceType": resource.resource_type,
        "created": scim_datetime(resource.created_at),
        "lastModified": scim_datetime(resource.updated_at),
        "version": weak_etag(resource.version),
    }
    return view


def _with_memberships(
    session: Session,
    protocol: ScimProtocol,
    tenant_id: str,
    type_name: str,
    resources: list[AcknowledgedResource],
    *,
    wanted: bool,
) -> list[Found]:
    """Found items, with their membership attribute loaded for all of them in one query."""
    membership = MEMBERSHIP_ATTRIBUTES.get(type_name)
    if not wanted or membership is None:
        return [Found(resource) for resource in resources]
    name, load = membership
    ids = [resource.id for resource in resources]
    if name == MEMBERS:
        # Pending first, applied second: an entry a worker applies in between is then in
        # both, and replaying it is a no-op; the other order could miss it in both.
        pending = journal.pending_commands(session, tenant_id, ids)
        loaded = load(session, tenant_id, ids)
        members = _with_pending_members(
            session, protocol, tenant_id, resources, applied=loaded, pending=pending
        )
        return [Found(r, members=members.get(r.id, [])) for r in resources]
    loaded = load(session, tenant_id, ids)
    return [Found(r, groups=loaded.get(r.id, [])) for r in resources]


def _with_pending_members(
    session: Session,
    protocol: ScimProtocol,
    tenant_id: str,
    groups: list[AcknowledgedResource],
    *,
    applied: dict[str, list[dict[str, Any]]],
    pending: dict[str, list[Command]],
) -> dict[str, list[dict[str, Any]]]:
    """Applied members, with the page's acknowledged-but-unapplied member changes on top.

    A client that added a member and reads the group back sees it, before any worker has
    applied it; the probe is one indexed query of the journal, usually finding nothing.
    Member commands are idempotent, so replaying one that was applied meanwhile is harmless.
    """
    if not pending:
        return applied
    projected = dict(applied)
    for group in groups:
        if group.id in pending:
            projected[group.id] = _projected_members(
                protocol, group, applied.get(group.id, []), pending[group.id]
            )
    return _with_member_types(session, tenant_id, projected)


def _projected_members(
    protocol: ScimProtocol,
    group: AcknowledgedResource,
    applied: list[dict[str, Any]],
    pending: list[Command],
) -> list[dict[str, Any]]:
    """The projection, or the applied members if a stored command cannot be projected.

    A read never fails because of a journaled command: it shows what it can and the problem
    goes to the log (the worker isolates and dead-letters such a command the same way).
    """
    try:
        return project_members(protocol, group.data, applied, pending)
    except Exception:
        log.exception("Projecting the pending member changes of group %s failed.", group.id)
        return applied


def _with_member_types(
    session: Session, tenant_id: str, members_by_group: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Give projected members the `type` applied ones carry (IdPs often send none)."""
    untyped = {
        m["value"] for ms in members_by_group.values() for m in ms
        if "type" not in m and isinstance(m.get("value"), str)
    }
    types = acknowledged.existing_types(session, tenant_id, untyped)
    return {
        group_id: [m if "type" in m or m.get("value") not in types
                   else {**m, "type": types[m["value"]]} for m in members]
        for group_id, members in members_by_group.items()
    }


class _Tally(Iterator[_Candidate]):
    """Passes items through and counts them."""

    def __init__(self, items: Iterable[_Candidate]) -> None:
        self._items = iter(items)
        self.count = 0

    def __next__(self) -> _Candidate:
        item = next(self._items)
        self.count += 1
        return item
