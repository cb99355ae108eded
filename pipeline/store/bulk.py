"""Batch-sized SQL: on PostgreSQL a batch's values or rows go as one array or JSON parameter (one
round trip, one plan, whatever the size) rather than a bind parameter per value (compiled and
planned afresh per batch, one OR branch per value) or a statement per row (executemany);
SQLite, in process, keeps the plain forms.
See docs/ARCHITECTURE.md ("Domain services and the store").
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import String, Table, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from scimflow.pipeline.store.db import is_postgres


def is_in(
    session: Session, column: Any, values: Collection[Any], item_type: TypeEngine[Any]
) -> Any:
    """`column IN values`: `= ANY(array)` on PostgreSQL, one parameter however many values."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(item_type)))
    return column.in_(list(values))


def pairs_in(
    session: Session, first: Any, second: Any, pairs: Collection[tuple[str, str]]
) -> Any:
    """`(first, second) IN pairs`, as the database finds it fastest.

    PostgreSQL plans a long row-value IN list as one OR branch per pair (hundreds per batch,
    planned afresh each time); a join with two unnested arrays is planned once, as one index
    probe per pair. Row-value IN works on SQLite >= 3.15.
    """
    if not is_postgres(session):
        return tuple_(first, second).in_(list(pairs))
    listed = func.unnest(
        bindparam(None, [pair[0] for pair in pairs], type_=ARRAY(String)),
        bindparam(None, [pair[1] for pair in pairs], type_=ARRAY(String)),
    ).table_valued("first", "second").render_derived()
    return tuple_(first, second).in_(select(listed.c.first, listed.c.second))


def insert_recordset(
    session: Session,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: str = "",
    returning: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """Insert rows on PostgreSQL with one statement and one parameter: the batch as JSON.

    `INSERT ... SELECT FROM json_populate_recordset(...)` sends the whole batch as one JSON
    document (encoded by the C encoder in one call) and is planned once, where an executemany
    sends (and the server executes) one statement per row, and array parameters cost a Python
    call per value. `conflict` is the statement's `ON CONFLICT ...` clause, if any; the
    `returning` columns of the rows really inserted come back.
    """
    document = json.dumps(
        [{name: row[name] for name in names} for row in rows], default=json_value
    )
    statement = _recordset_insert_sql(table, names, conflict, returning)
    result = session.connection().exec_driver_sql(statement, {"rows": document})
    return [tuple(row) for row in result] if returning else []


def json_value(value: Any) -> str:
    """`json.dumps`'s `default` for the values of a row: timestamps as ISO 8601 text."""
    # Timestamps travel as ISO 8601 text, which the timestamp columns parse as they are.
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


@lru_cache(maxsize=16)
def _recordset_insert_sql(
    table: Table, names: tuple[str, ...], conflict: str, returning: tuple[str, ...]
) -> str:
    # Column names come from the schema itself, never from the data; each JSON field is read
    # as its column's type (the table's own row type), JSON columns as the JSON value itself.
    listed = ", ".join(names)
    return (f"INSERT INTO {table.name} ({listed}) SELECT {listed} "
            f"FROM json_populate_recordset(NULL::{table.name}, CAST(%(rows)s AS JSON)) "
            f"{conflict}" + (f" RETURNING {', '.join(returning)}" if returning else ""))
