"""The events of a drained batch that only its statements know: memberships really added or
removed, sessions really revoked. Each becomes a `PendingEvent`, like the entries' own
events, and `outbox_rows` turns them into the outbox's rows.
See docs/EVENTS.md for the documents and docs/ARCHITECTURE.md ("Events").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from scimflow.pipeline.apply import Outcome
from scimflow.pipeline.events.model import (
    EventDraft,
    Subject,
    event_document,
    identity_of,
    new_event_id,
)
from scimflow.pipeline.scim.meta import scim_datetime
from scimflow.pipeline.store import directory
from scimflow.pipeline.store.directory import Key, MemberChange
from scimflow.pipeline.store.roles import RoleChange
from scimflow.pipeline.store.user_sessions import DELETED, DEPROVISIONED, RevokedSession


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event of the applying transaction, before the outbox gives it a position."""

    draft: EventDraft
    subject: Subject


def member_events(
    session: Session,
    outcomes: Mapping[Key, Outcome],
    added: Sequence[MemberChange],
    removed: Sequence[MemberChange],
) -> list[PendingEvent]:
    """`group.member_added` / `group.member_removed` for what the statements really changed:
    a member cleared and added back by the same replace changed nothing and says nothing."""
    added_set, removed_set = set(added), set(removed)
    changes = [("group.member_added", change) for change in added if change not in removed_set]
    changes += [("group.member_removed", change) for change in removed
                if change not in added_set and not _deleted(outcomes.get(change[:2]))]
    if not changes:
        return []
    groups = _group_facts(session, outcomes, {(c[0], c[1]) for _, c in changes})
    events = []
    for event_type, (tenant_id, group_id, member_id, member_type) in sorted(
        changes, key=lambda change: (change[1], change[0])
    ):
        group = groups[(tenant_id, group_id)]
        # A group the batch did not change lost a member the batch deleted: that deletion
        # is the change, so its entry and request are the event's.
        cause = outcomes.get((tenant_id, group_id)) or outcomes.get((tenant_id, member_id))
        draft = EventDraft(
            type=event_type, version=group.version, data=None, identity=group.identity,
            member={"value": member_id, "type": member_type},
            seq=_last_seq(cause) if cause else 0,
            request_id=(cause.request_id or None) if cause else None,
        )
        events.append(PendingEvent(draft, Subject(tenant_id, "Group", group_id)))
    return events


@dataclass(frozen=True, slots=True)
class _GroupFacts:
    version: int
    identity: dict[str, Any]


def _group_facts(
    session: Session, outcomes: Mapping[Key, Outcome], keys: Iterable[Key]
) -> dict[Key, _GroupFacts]:
    """What member events say of their group (version, identity): from its outcome when the
    batch changed it, else as applied (a user's deletion removed it from a group the batch
    did not touch)."""
    found: dict[Key, _GroupFacts] = {}
    unknown = []
    for key in keys:
        outcome = outcomes.get(key)
        if outcome is None or outcome.state is None:
            unknown.append(key)
            continue
        found[key] = _GroupFacts(outcome.version, identity_of("Group", outcome.state))
    for key, (version, identity) in directory.group_identities(session, unknown).items():
        found[key] = _GroupFacts(version, identity)
    return found


def _deleted(outcome: Outcome | None) -> bool:
    """A group deleted in this batch: its `group.deleted` says it all, member by member."""
    return outcome is not None and outcome.state is None


def _last_seq(outcome: Outcome) -> int:
    return outcome.applied[-1] if outcome.applied else 0


def session_events(
    outcomes: Mapping[Key, Outcome], revoked: Sequence[RevokedSession], now: datetime
) -> Iterator[PendingEvent]:
    """`session.revoked` for each session a deprovisioning ended."""
    for item in revoked:
        outcome = outcomes[(item.tenant_id, item.user_id)]
        last = outcome.events[-1] if outcome.events else None
        yield session_revoked(
            item,
            reason=DELETED if outcome.state is None else DEPROVISIONED,
            at=now,
            version=outcome.version,
            identity=last.identity if last else identity_of("User", outcome.state),
            seq=_last_seq(outcome),
            request_id=outcome.request_id or None,
        )


def session_revoked(
    item: RevokedSession,
    *,
    reason: str,
    at: datetime,
    version: int,
    identity: dict[str, Any],
    seq: int = 0,
    request_id: str | None = None,
) -> PendingEvent:
    """The `session.revoked` event of one session."""
    draft = EventDraft(
        type="session.revoked", version=version, seq=seq, data=None, identity=identity,
        session={"id": item.session_id, "revoked_at": scim_datetime(at), "reason": reason},
        request_id=request_id,
    )
    return PendingEvent(draft, Subject(item.tenant_id, "User", item.user_id))


def roles_changed(
    change: RoleChange,
    *,
    version: int,
    identity: dict[str, Any],
    seq: int = 0,
    request_id: str | None = None,
) -> PendingEvent:
    """The `user.roles_changed` event of a user whose roles changed."""
    before, after = set(change.before), set(change.after)
    roles = {"roles": list(change.after), "added": sorted(after - before),
             "removed": sorted(before - after)}
    draft = EventDraft(type="user.roles_changed", version=version, seq=seq, data=None,
                       identity=identity, roles=roles, request_id=request_id)
    return PendingEvent(draft, Subject(change.tenant_id, "User", change.user_id))


def role_events(
    session: Session, outcomes: Mapping[Key, Outcome], changes: Sequence[RoleChange]
) -> list[PendingEvent]:
    """`user.roles_changed` for the roles a batch's memberships changed, each reported with
    its user's version and identity (from its outcome, else as applied)."""
    unknown = [(c.tenant_id, c.user_id) for c in changes
               if (c.tenant_id, c.user_id) not in outcomes]
    applied = directory.user_identities(session, unknown)
    events = []
    for change in changes:
        key = (change.tenant_id, change.user_id)
        outcome = outcomes.get(key)
        if outcome is not None and outcome.state is not None:
            facts = (outcome.version, identity_of("User", outcome.state))
        elif key in applied:
            facts = applied[key]
        else:
            continue  # deleted by this batch: its user.deleted says it all
        events.append(roles_changed(change, version=facts[0], identity=facts[1],
                                    seq=_last_seq(outcome) if outcome else 0,
                                    request_id=(outcome.request_id or None) if outcome else None))
    return events


def outbox_rows(events: Iterable[PendingEvent], now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of these events (positions are added by `store/outbox.py`)."""
    rows = []
    for event in events:
        draft, subject = event.draft, event.subject
        event_id = new_event_id()
        rows.append({
            "event_id": event_id,
            "tenant_id": subject.tenant,
            "event_type": draft.type,
            "resource_type": subject.resource_type,
            "resource_id": subject.resource_id,
            "journal_seq": draft.seq,
            "payload": event_document(draft, subject, event_id=event_id, occurred_at=now),
            "created_at": now,
        })
    return rows
