"""The IdP existence check: `userName eq "…"` (or externalId, displayName, id) in one probe.

Okta, Entra and OneLogin ask this once per user before creating it, so during an initial sync
it is half of all requests. See docs/ARCHITECTURE.md ("The path of a read").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from scimflow.pipeline.scim.filters import Compare, Filter
from scimflow.pipeline.scim.schema import ResourceType
from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.acknowledged import AcknowledgedResource, from_row
from scimflow.pipeline.store.models import AcknowledgedRow as Row
from scimflow.pipeline.store.search import RESOURCE_COLUMNS, KeyKind, key_column

_UNIQUE_COLUMNS: Final = frozenset(("id", "external_id", "user_name_key", "display_name_key"))


@dataclass(frozen=True, slots=True)
class UniqueKey:
    column: str
    value: str


def unique_key(parsed: Filter | None, resource_type: ResourceType) -> UniqueKey | None:
    """The unique key a filter asks for by equality, or None for any other filter.

    The path is resolved by `search.key_column` like every filter path, so one that is never
    returned is InvalidFilter here too, even if the filter was not checked first.
    """
    if not (isinstance(parsed, Compare) and parsed.op == "eq" and isinstance(parsed.value, str)):
        return None
    key = key_column(parsed.path, resource_type)
    if key is None or key.column.key not in _UNIQUE_COLUMNS:
        return None
    # Folded exactly as acceptance folds the stored key (`acknowledged.key_columns`).
    value = fold_key(parsed.value) if key.kind is KeyKind.FOLDED else parsed.value
    return UniqueKey(key.column.key, value)


def _by(column: str) -> Select[Any]:
    # Neither the type nor anything else but the key and the tenant: every other index of
    # `resources` is led by the tenant alone, so the key's own index (led by the key, see
    # `models.AcknowledgedRow`) is the only one serving both equalities, whatever the
    # statistics say. The type is checked on the row read (an externalId may be shared by
    # a user and a group, so up to two rows come back).
    return select(*RESOURCE_COLUMNS).where(
        getattr(Row, column) == bindparam("value"), Row.tenant_id == bindparam("tenant_id")
    )


_STATEMENTS: Final = {column: _by(column) for column in _UNIQUE_COLUMNS}


def find(
    session: Session, tenant_id: str, resource_type: str, key: UniqueKey
) -> list[AcknowledgedResource]:
    """The resource holding `key` (a list of zero or one)."""
    params = {"tenant_id": tenant_id, "value": key.value}
    rows = session.connection().execute(_STATEMENTS[key.column], params)
    found = (from_row(row) for row in rows)
    return [resource for resource in found if resource.resource_type == resource_type]
