"""Searching the acknowledged state (`resources`): SCIM filters translated into parameterised SQL
over its key columns (a superset condition and whether it is exact), sorting, counting and paging.
See docs/ARCHITECTURE.md ("The path of a read").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, Select, Table, and_, false, func, not_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from scimflow.pipeline.errors import InvalidPath, InvalidValue
from scimflow.pipeline.scim.comparison import SUBSTRING_OPS, comparable, parse_datetime
from scimflow.pipeline.scim.evaluate import resolve
from scimflow.pipeline.scim.filters import And, Compare, Filter, Not, Or, Present, chain_operands
from scimflow.pipeline.scim.paths import AttrPath, parse_attr_path
from scimflow.pipeline.scim.schema import Attribute, ResourceType
from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.acknowledged import AcknowledgedResource, from_row
from scimflow.pipeline.store.models import AcknowledgedRow as Row

Condition = ColumnElement[bool]

POSTGRESQL: Final = "postgresql"


# --- Key columns -----------------------------------------------------------------------------


class KeyKind(Enum):
    EXACT = "exact"  # case-exact string, compared as stored
    FOLDED = "folded"  # stored as `fold_key(value)`; the filter value is folded to match
    INSTANT = "instant"  # a timestamp column for a dateTime attribute


@dataclass(frozen=True, slots=True)
class KeyColumn:
    """A `resources` column that holds one attribute's value, and how to compare with it."""

    column: InstrumentedAttribute[Any]
    kind: KeyKind
    nullable: bool


_COMMON_COLUMNS: Final[dict[tuple[str, str | None], KeyColumn]] = {
    ("id", None): KeyColumn(Row.id, KeyKind.EXACT, nullable=False),
    ("externalid", None): KeyColumn(Row.external_id, KeyKind.EXACT, nullable=True),
    ("meta", "created"): KeyColumn(Row.created_at, KeyKind.INSTANT, nullable=False),
    ("meta", "lastmodified"): KeyColumn(Row.updated_at, KeyKind.INSTANT, nullable=False),
}
# The unique-key columns filled per resource type (see acknowledged.key_columns).
_TYPE_COLUMNS: Final[dict[str, dict[tuple[str, str | None], KeyColumn]]] = {
    "User": {("username", None): KeyColumn(Row.user_name_key, KeyKind.FOLDED, nullable=True)},
    "Group": {
        ("displayname", None): KeyColumn(Row.display_name_key, KeyKind.FOLDED, nullable=True)
    },
}


def key_column(path: AttrPath, resource_type: ResourceType) -> KeyColumn | None:
    """The column holding the attribute `path` names, or None if it lives only in `data`.

    Accepts the URN-qualified core form (`urn:...:core:2.0:User:userName`); an extension URN
    never names a key column. Raises InvalidFilter for a path that is never returned: the
    path is resolved first, as every filter path is.
    """
    if resolve(path, resource_type) is None:
        return None
    if path.urn is not None and path.urn.lower() != resource_type.schema.id.lower():
        return None
    key = (path.name.lower(), path.sub.lower() if path.sub is not None else None)
    return _COMMON_COLUMNS.get(key) or _TYPE_COLUMNS.get(resource_type.name, {}).get(key)


# --- Filter translation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Translation:
    """A condition selecting a superset of a filter's matches; `exact` when it is the set.

    `condition` None means no restriction (TRUE).
    """

    condition: Condition | None
    exact: bool


EVERYTHING: Final = Translation(None, exact=False)
NO_FILTER: Final = Translation(None, exact=True)


def translate(f: Filter, resource_type: ResourceType, *, dialect: str) -> Translation:
    """Translate a checked filter (`evaluate.check_filter`) into a SQL condition."""
    if isinstance(f, And):
        return _all_of(
            [translate(part, resource_type, dialect=dialect) for part in chain_operands(f)]
        )
    if isinstance(f, Or):
        return _any_of(
            [translate(part, resource_type, dialect=dialect) for part in chain_operands(f)]
        )
    if isinstance(f, Not):
        return _negated(translate(f.inner, resource_type, dialect=dialect))
    if isinstance(f, Compare | Present):
        key = key_column(f.path, resource_type)
        return EVERYTHING if key is None else _atom(f, key, dialect)
    return EVERYTHING  # a valuePath filters a multi-valued attribute, kept only in `data`


def _all_of(parts: Sequence[Translation]) -> Translation:
    conditions = [part.condition for part in parts if part.condition is not None]
    condition = and_(*conditions) if conditions else None
    return Translation(condition, exact=all(part.exact for part in parts))


def _any_of(parts: Sequence[Translation]) -> Translation:
    exact = all(part.exact for part in parts)
    if any(part.condition is None for part in parts):
        return Translation(None, exact)  # one operand admits every row
    return Translation(
        or_(*(part.condition for part in parts if part.condition is not None)), exact
    )


def _negated(inner: Translation) -> Translation:
    # The complement of a superset is no superset of the complement: only an exact
    # translation can be negated.
    if not inner.exact:
        return EVERYTHING
    if inner.condition is None:
        return Translation(false(), exact=True)
    return Translation(not_(inner.condition), exact=True)


def _atom(f: Compare | Present, key: KeyColumn, dialect: str) -> Translation:
    column = key.column
    if isinstance(f, Present):
        return _exact(_present(key))
    if f.value is None:  # check_filter allows null with eq and ne only
        return _exact(column.is_(None) if f.op == "eq" else column.is_not(None))
    operand = _operand(key, f.value)
    if operand is None or (f.op in SUBSTRING_OPS and key.kind is KeyKind.INSTANT):
        return EVERYTHING
    if f.op == "ne":
        unequal = not_(_equal(column, operand))
        return _exact(or_(column.is_(None), unequal) if key.nullable else unequal)
    if f.op == "eq":
        return _exact(_guarded(key, _equal(column, operand)))
    if f.op in SUBSTRING_OPS:
        assert isinstance(operand, str)
        return _exact(_guarded(key, _substring(key, f.op, operand, dialect)))
    if isinstance(operand, datetime):
        return _exact(_guarded(key, _shown_ordering(f.op, column, operand)))
    return _exact(_guarded(key, _ordering(f.op, _ordered(key, dialect), operand)))


def _equal(column: InstrumentedAttribute[Any], operand: str | datetime) -> Condition:
    return _shown_equal(column, operand) if isinstance(operand, datetime) else column == operand


def _exact(condition: Condition) -> Translation:
    return Translation(condition, exact=True)


def _present(key: KeyColumn) -> Condition:
    """RFC 7644 §3.4.2.2 "pr": a non-empty value."""
    if key.kind is KeyKind.INSTANT:
        return key.column.is_not(None)
    return and_(key.column.is_not(None), key.column != "")


def _guarded(key: KeyColumn, condition: Condition) -> Condition:
    """Make a comparison FALSE, not NULL, on an absent value, so `not` over it stays exact."""
    return and_(key.column.is_not(None), condition) if key.nullable else condition


def _operand(key: KeyColumn, value: object) -> str | datetime | None:
    """The filter value normalised as the column stores it; None if it cannot be."""
    if not isinstance(value, str):
        return None
    if key.kind is KeyKind.FOLDED:
        return fold_key(value)
    if key.kind is KeyKind.INSTANT:
        instant = parse_datetime(value)
        # No UTC column value to bound it with: the evaluator decides it in memory.
        return instant if instant is not None and _is_boundable(instant) else None
    return value


# --- Timestamps as shown ---------------------------------------------------------------------
# A timestamp column is compared as responses show it, to the millisecond (`meta.scim_datetime`),
# which is also what the in-memory evaluator sees: a column value c matches `op X` when
# truncate_ms(c) op X. truncate_ms(c) is a whole millisecond, so each comparison is a bound on
# c itself, and the column's index still serves it.

_MILLISECOND: Final = timedelta(milliseconds=1)
_LAST_MILLISECOND: Final = datetime.max.replace(tzinfo=UTC) - _MILLISECOND


def _is_boundable(instant: datetime) -> bool:
    return instant.utcoffset() == timedelta(0) and instant < _LAST_MILLISECOND


def _shown_equal(column: InstrumentedAttribute[Any], instant: datetime) -> Condition:
    start = _whole_millisecond(instant)
    if start != instant:
        return false()  # no millisecond-precise text equals a finer instant
    return and_(column >= start, column < start + _MILLISECOND)


def _shown_ordering(op: str, column: InstrumentedAttribute[Any], instant: datetime) -> Condition:
    floor = _whole_millisecond(instant)
    after = floor + _MILLISECOND  # the first shown value greater than `instant`
    ceiling = floor if floor == instant else after  # the first shown value not less than it
    if op == "gt":
        return column >= after
    if op == "ge":
        return column >= ceiling
    if op == "lt":
        return column < ceiling
    return column < after  # le


def _whole_millisecond(instant: datetime) -> datetime:
    return instant.replace(microsecond=instant.microsecond - instant.microsecond % 1000)


def _substring(key: KeyColumn, op: str, text: str, dialect: str) -> Condition:
    column = key.column
    if text == "":
        return column.is_not(None)  # every string contains, starts and ends with ""
    if dialect == POSTGRESQL or key.kind is KeyKind.FOLDED:
        # autoescape escapes %, _ and the escape character itself in the bound value.
        if op == "co":
            return column.contains(text, autoescape=True)
        if op == "sw":
            return column.startswith(text, autoescape=True)
        return column.endswith(text, autoescape=True)
    # SQLite, case-exact column: LIKE would ignore ASCII case.
    if op == "co":
        return func.instr(column, text) > 0
    if op == "sw":
        return func.substr(column, 1, len(text)) == text
    return func.substr(column, -len(text)) == text


def _ordered(key: KeyColumn, dialect: str) -> ColumnElement[Any]:
    """The column as it orders: strings by code point on every database."""
    if dialect == POSTGRESQL and key.kind is not KeyKind.INSTANT:
        return key.column.collate("C")
    return key.column.expression


_ORDERINGS: Final[dict[str, Callable[[ColumnElement[Any], Any], Condition]]] = {
    "gt": lambda column, value: column > value,
    "ge": lambda column, value: column >= value,
    "lt": lambda column, value: column < value,
    "le": lambda column, value: column <= value,
}


def _ordering(op: str, column: ColumnElement[Any], operand: str | datetime) -> Condition:
    return _ORDERINGS[op](column, operand)


# --- Sorting (RFC 7644 §3.4.2.3) -------------------------------------------------------------

SortKey = tuple[int, Any]


@dataclass(frozen=True, slots=True)
class Sort:
    """A resolved `sortBy` / `sortOrder`; without `leaf`, the default stable order.

    `column` is set when the database can sort; otherwise `key` sorts canonical resources (with
    `id` and `meta` added) in memory. Either way resources without a value come last when
    ascending and first when descending, and ties keep the stable order (created_at, id).
    """

    descending: bool = False
    column: KeyColumn | None = None
    top: Attribute | None = None
    leaf: Attribute | None = None
    container: str | None = None  # the extension schema id holding the attribute

    @property
    def in_sql(self) -> bool:
        return self.leaf is None or self.column is not None

    def order_by(self, dialect: str) -> list[ColumnElement[Any]]:
        stable: list[ColumnElement[Any]] = [Row.created_at.asc(), Row.id.asc()]
        if self.column is None:
            return stable
        column = _ordered(self.column, dialect)
        first = column.desc().nulls_first() if self.descending else column.asc().nulls_last()
        return [first, *stable]

    def key(self, resource: Mapping[str, Any]) -> SortKey:
        """Sort key of one resource: present values first (ascending), then absent ones."""
        value = self._value(resource)
        return (0, value) if value is not None else (1, None)

    def _value(self, resource: Mapping[str, Any]) -> Any:
        container = resource if self.container is None else resource.get(self.container)
        if self.top is None or self.leaf is None or not isinstance(container, Mapping):
            return None
        raw = container.get(self.top.name)
        if self.top.multi_valued:
            raw = _primary_or_first(raw)
        if self.leaf is not self.top:
            raw = raw.get(self.leaf.name) if isinstance(raw, Mapping) else None
        return comparable(self.leaf, raw)


def resolve_sort(sort_by: str | None, sort_order: str, resource_type: ResourceType) -> Sort:
    """Resolve the RFC 7644 §3.4.2.3 parameters; an unknown attribute is 400 invalidValue.

    A complex attribute must be sorted by a sub-attribute, except a multi-valued one, which
    sorts by the "value" of its primary (else first) value. An attribute that is never
    returned is 400 invalidFilter: the order of a page would reveal it.
    """
    descending = sort_order == "descending"
    if sort_by is None:
        return Sort(descending)
    path = _sort_path(sort_by, resource_type)
    top = resolve(AttrPath(path.urn, path.name, None), resource_type)
    if top is None:
        raise InvalidValue(f"sortBy names no attribute of {resource_type.name}: {sort_by!r}.")
    leaf = _sort_leaf(top, path, resource_type, sort_by)
    return Sort(
        descending,
        column=key_column(path, resource_type),
        top=top,
        leaf=leaf,
        container=_container(path, resource_type),
    )


def _sort_path(sort_by: str, resource_type: ResourceType) -> AttrPath:
    try:
        path = parse_attr_path(sort_by, resource_type.schema_ids)
    except InvalidPath as error:
        raise InvalidValue(f"Invalid sortBy: {error.detail}") from None
    if not path.name:
        raise InvalidValue(f"sortBy must name an attribute, not a schema: {sort_by!r}.")
    return path


def _sort_leaf(
    top: Attribute, path: AttrPath, resource_type: ResourceType, sort_by: str
) -> Attribute:
    sub_name = path.sub
    if sub_name is None and top.is_complex and top.multi_valued:
        sub_name = "value"
    # Resolved again with the sub-attribute, so a never-returned one is refused as in filters.
    leaf = resolve(AttrPath(path.urn, path.name, sub_name), resource_type)
    if leaf is None or leaf.is_complex:
        raise InvalidValue(f"sortBy must name a simple (sub-)attribute: {sort_by!r}.")
    return leaf


def _container(path: AttrPath, resource_type: ResourceType) -> str | None:
    if path.urn is None or path.urn.lower() == resource_type.schema.id.lower():
        return None
    schema = resource_type.schema_for(path.urn)
    return schema.id if schema is not None else None


def _primary_or_first(raw: Any) -> Any:
    values = [item for item in raw if item is not None] if isinstance(raw, list) else []
    primary = (v for v in values if isinstance(v, Mapping) and v.get("primary") is True)
    return next(primary, values[0] if values else None)


# --- Queries ---------------------------------------------------------------------------------

# Core columns: a search runs on every IdP existence check, and the ORM layer would add CPU.
_TABLE: Table = cast(Table, Row.__table__)
RESOURCE_COLUMNS: Final = (
    _TABLE.c.id,
    _TABLE.c.resource_type,
    _TABLE.c.version,
    _TABLE.c.data,
    _TABLE.c.created_at,
    _TABLE.c.updated_at,
    _TABLE.c.create_digest,
    _TABLE.c.source,
)


def candidates(tenant_id: str, resource_type: str, condition: Condition | None) -> Select[Any]:
    """The resources of one tenant and type satisfying `condition` (unordered)."""
    statement = select(*RESOURCE_COLUMNS).where(
        Row.tenant_id == tenant_id, Row.resource_type == resource_type
    )
    return statement if condition is None else statement.where(condition)


def count(session: Session, statement: Select[Any]) -> int:
    """How many rows `statement` selects: `SELECT count(*)` over it."""
    counted = statement.with_only_columns(func.count(), maintain_column_froms=True)
    return int(session.execute(counted.order_by(None)).scalar_one())


def page(
    session: Session, statement: Select[Any], *, offset: int, limit: int
) -> list[AcknowledgedResource]:
    """One page of an ordered statement, paged by the database."""
    rows = session.execute(statement.offset(offset).limit(limit))
    return [from_row(row) for row in rows]


def counted_page(
    session: Session, statement: Select[Any], *, offset: int, limit: int
) -> tuple[int | None, list[AcknowledgedResource]]:
    """One page and the total number of matches, from one statement.

    `count(*) OVER ()` is computed before LIMIT/OFFSET, so the total and the page come from
    the same snapshot without a second query. An empty page carries no total (None).
    """
    total_column = func.count().over().label("total_results")
    rows = list(session.execute(statement.add_columns(total_column).offset(offset).limit(limit)))
    total = int(rows[0].total_results) if rows else None
    return total, [from_row(row) for row in rows]


def stream(
    session: Session, statement: Select[Any], *, chunk: int
) -> Iterator[list[AcknowledgedResource]]:
    """All rows of an ordered statement in chunks, without loading them all at once.

    `yield_per` fetches `chunk` rows at a time (a server-side cursor on PostgreSQL); the
    session stays usable for other queries in between.
    """
    result = session.execute(statement.execution_options(yield_per=chunk))
    for rows in result.partitions():
        yield [from_row(row) for row in rows]
