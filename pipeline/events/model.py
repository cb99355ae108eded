"""What an application is told: one versioned JSON document per event type.

Pure: the applying transaction turns each applied change into an `EventDraft` (`apply.py`) or,
for memberships and sessions, into drafts built from what the statements really changed
(`services/batch_writes.py`); `event_document` gives the document stored in the outbox and
sent as is. Documented for applications in docs/EVENTS.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scimflow.pipeline.scim.meta import scim_datetime

# Bumped when a document's shape changes incompatibly; consumers can switch on it.
SCHEMA_VERSION = 1

USER_EVENTS = ("user.created", "user.updated", "user.deprovisioned", "user.reactivated",
               "user.deleted", "user.roles_changed")
GROUP_EVENTS = ("group.created", "group.updated", "group.deleted", "group.member_added",
                "group.member_removed")
SESSION_EVENTS = ("session.revoked",)
EVENT_TYPES = USER_EVENTS + GROUP_EVENTS + SESSION_EVENTS

# Never reported, not even as changed: a password is re-hashed with a new salt whenever an IdP
# re-sends it (Okta's full PUTs do), so its change says nothing, and its value is secret.
UNREPORTED = frozenset({"meta", "members", "password"})

# Attributes a resource's identity is reported by, besides its id.
IDENTITY = {"User": ("externalId", "userName"), "Group": ("externalId", "displayName")}


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it has an id and a position: what changed, and the state after it."""

    type: str
    version: int
    seq: int
    # The resource's SCIM representation after the change (None: deleted).
    data: dict[str, Any] | None
    identity: dict[str, Any]
    changed_attributes: tuple[str, ...] = ()
    member: dict[str, Any] | None = None
    session: dict[str, Any] | None = None
    # user.roles_changed: {"roles": [...], "added": [...], "removed": [...]}.
    roles: dict[str, Any] | None = None
    # The API request whose change this is (support can follow it from the IdP's log).
    request_id: str | None = None


def entry_event_type(
    resource_type: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> str:
    """The one event an applied change is reported as."""
    kind = resource_type.lower()
    if after is None:
        return f"{kind}.deleted"
    if before is None:
        return f"{kind}.created"
    if resource_type == "User" and _active(before) != _active(after):
        return "user.reactivated" if _active(after) else "user.deprovisioned"
    return f"{kind}.updated"


def _active(state: Mapping[str, Any]) -> bool:
    return state.get("active", True) is not False


def changed_attributes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The top-level attributes whose values differ (an update's `changed_attributes`)."""
    if before is None or after is None:
        return ()
    names = (before.keys() | after.keys()) - UNREPORTED
    return tuple(sorted(name for name in names if before.get(name) != after.get(name)))


def identity_of(resource_type: str, state: Mapping[str, Any] | None) -> dict[str, Any]:
    state = state or {}
    return {name: state.get(name) for name in IDENTITY.get(resource_type, ("externalId",))}


def new_event_id(now_ns: int | None = None) -> str:
    """`evt_` and 32 hex digits, time-ordered (48 bits of milliseconds, then 80 random bits):
    unique across deployments, so a receiver can deduplicate by it alone."""
    millis = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
    return f"evt_{millis:012x}{os.urandom(10).hex()}"


@dataclass(frozen=True, slots=True)
class Subject:
    """The resource an event is about."""

    tenant: str
    resource_type: str
    resource_id: str


def event_document(
    draft: EventDraft, subject: Subject, *, event_id: str, occurred_at: datetime
) -> dict[str, Any]:
    """The event as stored and delivered (docs/EVENTS.md)."""
    document: dict[str, Any] = {
        "id": event_id,
        "type": draft.type,
        "schema_version": SCHEMA_VERSION,
        "tenant": subject.tenant,
        "occurred_at": scim_datetime(occurred_at),
        "resource": {
            "type": subject.resource_type,
            "id": subject.resource_id,
            **draft.identity,
            "version": draft.version,
        },
        "data": draft.data,
        "request_id": draft.request_id,
    }
    if draft.type.endswith(".updated") or draft.type in ("user.deprovisioned",
                                                          "user.reactivated"):
        document["changed_attributes"] = list(draft.changed_attributes)
    if draft.member is not None:
        document["member"] = draft.member
    if draft.session is not None:
        document["session"] = draft.session
    if draft.roles is not None:
        document["roles"] = draft.roles
    return document


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint subscribed with these patterns (`*`, `user.*`, `group.member_added`)
    receives this event type."""
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns, refused with a clear message when one names no event type."""
    checked = []
    for given in patterns:
        pattern = given.strip()
        if not any(matches([pattern], event_type) for event_type in EVENT_TYPES):
            raise ValueError(
                f"{pattern!r} names no event type; known types: {', '.join(EVENT_TYPES)}"
            )
        checked.append(pattern)
    return checked
