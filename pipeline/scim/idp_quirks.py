"""IdP quirks: the one place where documented deviations from RFC 7643/7644 are undone. Each rule
rewrites exactly the documented shape, leaving the rest to strict validation, and has a captured
sample under `tests/samples/idp/`.
See docs/ARCHITECTURE.md ("The protocol (`pipeline/scim/`)").

Handled here:
- Entra ID default mode (https://learn.microsoft.com/en-us/entra/identity/app-provisioning/
  use-scim-to-provision-users-and-groups, and .../application-provisioning-config-problem-scim-
  compatibility): capitalised ops (`"Replace"`); booleans as `"True"`/`"False"` strings;
  `Remove` of `members` with a value array (removes exactly those members, never all);
  `manager` as a bare string id, or (E1 Example 5) as a one-item array at the unqualified path
  `manager`; the misspelled enterprise URN `...:enterprise:2.0User`, next to which E1 Example 2
  sends the enterprise attributes at the top level; the retired `.../ADSCIM/2.0/Group` schema
  on groups.
- Entra with `aadOptscim062020`: path-less `replace` with dotted (`"name.givenName"`) and
  URN-qualified keys. No rewrite is needed: the PATCH normaliser parses every key of a
  path-less value as an attribute path (see `patch.normalise_patch`).
- Okta (https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20): path-less
  `replace` of `{"active": false}` and of `{"id", "displayName"}` on group rename, and full-object
  PUT echoing `id`, `meta`, `groups`. No rewrite is needed: read-only attributes in a resource
  body or a path-less value are ignored (RFC 7643 §2.2), which is what Okta relies on.
- Google Workspace and OneLogin send RFC-canonical requests; nothing to undo.
"""

from __future__ import annotations

import json
from typing import Any

from scimflow.pipeline.scim.schema import ENTERPRISE_USER_SCHEMA

_MISSPELLED_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0user"
_RETIRED_ENTRA_GROUP_SCHEMA = (
    "http://schemas.microsoft.com/2006/11/resourcemanagement/adscim/2.0/group"
)
_BOOLEAN_STRINGS = {"true": True, "false": False}
# The enterprise extension's attributes (RFC 7643 §4.3), lower-cased: E1 Example 2 sends them at
# the top level of a body whose `schemas` carries the misspelled URN.
_ENTERPRISE_ATTRIBUTES = frozenset(
    ("employeenumber", "costcenter", "organization", "division", "department", "manager")
)
_ENTERPRISE_MANAGER_PATH = f"{ENTERPRISE_USER_SCHEMA}:manager"
_MANAGER_PATHS = frozenset(("manager", _ENTERPRISE_MANAGER_PATH.lower()))


def lenient_boolean(value: Any) -> bool | None:
    """Read Entra's `"True"` / `"False"` boolean strings; anything else is not a boolean."""
    if type(value) is str:
        return _BOOLEAN_STRINGS.get(value.lower())
    return None


def undo_resource_quirks(payload: Any) -> Any:
    """Rewrite a POST/PUT body's documented IdP deviations into RFC form (returns a copy)."""
    if type(payload) is not dict:
        return payload
    body = dict(payload)
    schemas = body.get("schemas")
    misspelled = type(schemas) is list and any(_is_misspelled(s) for s in schemas)
    if type(schemas) is list:
        body["schemas"] = [_canonical_urn(s) for s in schemas if not _is_retired_schema(s)]
    for key in list(body):
        # With both spellings present, the body is ambiguous: the misspelled key is left in
        # place for validation to reject rather than one of the two being silently dropped.
        if _is_misspelled(key) and ENTERPRISE_USER_SCHEMA not in body:
            body[ENTERPRISE_USER_SCHEMA] = body.pop(key)
    if misspelled:
        _nest_flattened_enterprise(body)
    enterprise = body.get(ENTERPRISE_USER_SCHEMA)
    if type(enterprise) is dict and type(enterprise.get("manager")) is str:
        body[ENTERPRISE_USER_SCHEMA] = {**enterprise, "manager": {"value": enterprise["manager"]}}
    return body


def undo_patch_quirks(operations: list[Any]) -> list[Any]:
    """Rewrite a PATCH request's `Operations` into RFC form (returns new operation objects)."""
    out: list[Any] = []
    for operation in operations:
        if type(operation) is not dict:
            out.append(operation)
            continue
        for op in _manager_as_complex(_lowercase_op(operation)):
            out.extend(_split_remove_by_value(op))
    return out


def _is_misspelled(urn: Any) -> bool:
    return type(urn) is str and urn.lower() == _MISSPELLED_ENTERPRISE


def _canonical_urn(urn: Any) -> Any:
    return ENTERPRISE_USER_SCHEMA if _is_misspelled(urn) else urn


def _nest_flattened_enterprise(body: dict[str, Any]) -> None:
    """Move E1 Example 2's top-level enterprise attributes under the enterprise URN.

    An attribute also given under the URN stays at the top level, where validation rejects it
    as unknown, rather than one of the two values being silently dropped.
    """
    enterprise = body.get(ENTERPRISE_USER_SCHEMA)
    if enterprise is not None and type(enterprise) is not dict:
        return
    nested = dict(enterprise or {})
    taken = {key.lower() for key in nested if type(key) is str}
    for key in list(body):
        if type(key) is str and key.lower() in _ENTERPRISE_ATTRIBUTES - taken:
            nested[key] = body.pop(key)
    if nested:
        body[ENTERPRISE_USER_SCHEMA] = nested


def _is_retired_schema(urn: Any) -> bool:
    return type(urn) is str and urn.lower() == _RETIRED_ENTRA_GROUP_SCHEMA


def _lowercase_op(operation: dict[str, Any]) -> dict[str, Any]:
    op = operation.get("op")
    if type(op) is str and op != op.lower():
        return {**operation, "op": op.lower()}
    return operation


def _manager_as_complex(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Entra's `manager` values into the enterprise extension's `{"value": id}` (RFC 7643 §4.3).

    Entra sends a bare id string at the URN-qualified path (E7); E1 Example 5 sends a one-item
    array at the unqualified path `manager`, which names no core User attribute. Only these
    two paths are matched: a tenant attribute such as `accountManager` is left alone.
    The id names the whole manager, so the value is replaced rather than merged: a merge into
    the current manager would keep the previous manager's `$ref`.
    """
    path = operation.get("path")
    if type(path) is not str or path.lower() not in _MANAGER_PATHS:
        return [operation]
    rewritten = {**operation, "path": _ENTERPRISE_MANAGER_PATH}
    value = operation.get("value")
    if type(value) is list and len(value) == 1 and type(value[0]) is dict:
        value = value[0]
    elif type(value) is str:
        value = {"value": value}
    else:
        return [rewritten]
    if rewritten.get("op") not in ("add", "replace"):
        return [rewritten]
    return [{"op": "remove", "path": _ENTERPRISE_MANAGER_PATH}, {**rewritten, "value": value}]


def _split_remove_by_value(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn Entra's `remove` + value array into one value-filtered `remove` per listed value.

    RFC 7644 §3.5.2.2 gives `remove` no value: a server that ignores Entra's value array removes
    every member of the group. Only values that name their `value` sub-attribute are rewritten.
    """
    path = operation.get("path")
    value = operation.get("value")
    if (
        operation.get("op") != "remove"
        or type(path) is not str
        or "[" in path
        or type(value) is not list
        or not value
        or not all(type(item) is dict and type(item.get("value")) is str for item in value)
    ):
        return [operation]
    return [
        {"op": "remove", "path": f"{path}[value eq {json.dumps(item['value'])}]"}
        for item in value
    ]
