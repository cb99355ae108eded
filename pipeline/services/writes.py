"""The write path: validate, reserve unique keys, journal, commit, then ring the workers.

Only after the commit is the doorbell rung, so a worker never looks for work that is not there
yet. See docs/ARCHITECTURE.md ("The path of a write").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.column_limits import check_storable
from scimflow.pipeline.commands import MEMBERS, Command
from scimflow.pipeline.errors import InvalidValue, NotFound, PreconditionFailed, Uniqueness
from scimflow.pipeline.ports import Clock, Dispatcher, utc_now
from scimflow.pipeline.scim.meta import names_version, weak_etag
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.services.admission import Admission
from scimflow.pipeline.services.claims import claimed
from scimflow.pipeline.services.tenant_protocols import ProtocolSource, as_protocol_source
from scimflow.pipeline.store import acknowledged, batched_creates, journal
from scimflow.pipeline.store.acknowledged import JIT, AcknowledgedResource
from scimflow.pipeline.store.batched_creates import BatchedCreates
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenants import TenantRef


@dataclass(frozen=True, slots=True)
class WriteReceipt:
    """An acknowledged write: the resource as acknowledged, and group members if known."""

    resource: AcknowledgedResource
    members: list[dict[str, Any]] | None = None
    created: bool = True


def new_resource_id() -> str:
    return str(uuid.uuid4())


class WriteService:
    """Accepts SCIM writes for the API."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        protocol: ScimProtocol | ProtocolSource,
        dispatcher: Dispatcher,
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_resource_id,
        admission: Admission | None = None,
    ) -> None:
        self._sessions = sessions
        # On PostgreSQL the creates of concurrent requests are written together, one statement
        # per batch (store/batched_creates.py); SQLite has a single writer anyway.
        bind = sessions.kw["bind"]
        self._batched_creates = (
            BatchedCreates(bind) if bind.dialect.name == "postgresql" else None
        )
        self._protocols = as_protocol_source(protocol)
        self._dispatcher = dispatcher
        self._clock = clock
        self._new_id = new_id
        self._admission = admission

    def create(
        self, tenant: TenantRef, type_name: str, payload: Any, *, request_id: str
    ) -> WriteReceipt:
        """POST: a new resource, or the original one when the IdP retries the same POST."""
        # Validation (and password hashing) runs before the transaction, so no connection is
        # held for it; admission is checked before both.
        with self._admitted(tenant):
            protocol = self._protocols.for_tenant(tenant.id)
            command = protocol.validate_create(type_name, self._new_id(), payload)
        resource = command.resource or {}
        check_storable(type_name, resource, resource.get(MEMBERS))
        digest = create_digest(resource)
        now = self._clock()
        head = _without_members(resource)
        new = batched_creates.new_resource(
            tenant.id, command, head, now=now, create_digest=digest, request_id=request_id
        )
        inserted, members = self._insert_created(tenant, new, resource.get(MEMBERS))
        if not inserted:
            return self._create_over(tenant, type_name, payload, resource=resource,
                                     digest=digest, request_id=request_id)
        self._ring(tenant, command)
        ack = AcknowledgedResource(command.resource_id, type_name, 1, head, now, now, digest)
        return WriteReceipt(ack, members)

    def _create_over(
        self, tenant: TenantRef, type_name: str, payload: Any, *, resource: dict[str, Any],
        digest: str, request_id: str,
    ) -> WriteReceipt:
        """A POST whose keys are taken: the retried POST gets its resource back; a user a JIT
        login created is claimed (same id, SCIM's attributes, 201); anything else is a 409."""
        protocol = self._protocols.for_tenant(tenant.id)
        with self._transaction(tenant) as session:
            taken = acknowledged.find_conflict(session, tenant.id, type_name, resource)
            if taken is None or taken.source != JIT:
                return _replayed(session, tenant, type_name, resource, digest, existing=taken)
            current = self._current(session, tenant, type_name, taken.id, None)
            command = protocol.validate_replace(type_name, current.id, payload, current.data)
            state = command.resource or {}
            saved, _ = self._save(session, tenant, current, command=command, state=state,
                                  members=None, request_id=request_id)
            # The IdP retrying this POST (its 201 lost) is then recognised as a repeat.
            saved = acknowledged.set_create_digest(session, tenant.id, saved, digest)
        self._ring(tenant, command)
        return WriteReceipt(saved)

    def _insert_created(
        self, tenant: TenantRef, new: batched_creates.NewResource, members: list[Any] | None
    ) -> tuple[bool, list[dict[str, Any]] | None]:
        """Reserve the keys and journal the create; False if a key is taken. With the members,
        each with its type, as a read will show them."""
        if self._batched_creates is not None and not members:
            with self._admitted(tenant):
                return self._batched_creates.insert(new), members
        # Member references are checked in the transaction that journals the create.
        with self._transaction(tenant) as session:
            typed = _check_member_references(session, tenant, members)
            return batched_creates.insert_created(session, new), typed

    def replace(
        self,
        tenant: TenantRef,
        type_name: str,
        resource_id: str,
        payload: Any,
        *,
        if_match: str | None,
        request_id: str,
    ) -> WriteReceipt:
        """PUT: replace the resource's writable attributes (RFC 7644 §3.5.1)."""
        # The tenant's protocol is looked up before the transaction: never two connections at once.
        protocol = self._protocols.for_tenant(tenant.id)
        with self._transaction(tenant) as session:
            current = self._current(session, tenant, type_name, resource_id, if_match)
            command = protocol.validate_replace(type_name, resource_id, payload, current.data)
            resource = command.resource or {}
            saved, members = self._save(
                session, tenant, current, command=command, state=resource,
                members=resource.get(MEMBERS), request_id=request_id,
            )
        self._ring(tenant, command)
        return WriteReceipt(saved, members)

    def patch(
        self,
        tenant: TenantRef,
        type_name: str,
        resource_id: str,
        payload: Any,
        *,
        if_match: str | None,
        request_id: str,
    ) -> WriteReceipt:
        """PATCH (RFC 7644 §3.5.2); a PATCH that changes nothing is not journaled."""
        protocol = self._protocols.for_tenant(tenant.id)
        with self._transaction(tenant) as session:
            current = self._current(session, tenant, type_name, resource_id, if_match)
            command, new, changed = protocol.validate_patch(
                type_name, resource_id, payload, current.data
            )
            member_values = _patched_member_values(command, new)
            if not changed and member_values is None and current.source != JIT:
                return WriteReceipt(current)
            saved, _ = self._save(
                session, tenant, current, command=command, state=new, members=member_values,
                request_id=request_id,
            )
        self._ring(tenant, command)
        return WriteReceipt(saved)

    def delete(
        self,
        tenant: TenantRef,
        type_name: str,
        resource_id: str,
        *,
        if_match: str | None,
        request_id: str,
    ) -> None:
        """DELETE (RFC 7644 §3.6): the resource is gone for readers at once."""
        command = self._protocols.for_tenant(tenant.id).delete(type_name, resource_id)
        with self._transaction(tenant) as session:
            self._current(session, tenant, type_name, resource_id, if_match)
            acknowledged.remove(session, tenant.id, resource_id)
            journal.append(session, tenant.id, command, now=self._clock(), request_id=request_id)
        self._ring(tenant, command)

    def _save(
        self,
        session: Session,
        tenant: TenantRef,
        current: AcknowledgedResource,
        *,
        command: Command,
        state: Mapping[str, Any],
        members: list[dict[str, Any]] | None,
        request_id: str,
    ) -> tuple[AcknowledgedResource, list[dict[str, Any]] | None]:
        """Save a PUT's or PATCH's new state and journal its command, once checked for what the
        workers could not apply (column sizes, member references); its members typed."""
        check_storable(command.resource_type, state, members)
        typed = _check_member_references(session, tenant, members, command.resource_id)
        now = self._clock()
        saved = acknowledged.save(session, tenant.id, current, _without_members(state), now=now)
        journal.append(session, tenant.id, command, now=now, request_id=request_id)
        if current.source == JIT:
            claimed(session, tenant.id, saved, now=now, request_id=request_id)
        return saved, typed

    def _current(
        self,
        session: Session,
        tenant: TenantRef,
        type_name: str,
        resource_id: str,
        if_match: str | None,
    ) -> AcknowledgedResource:
        current = acknowledged.get(session, tenant.id, type_name, resource_id, for_update=True)
        if current is None:
            raise NotFound(f"{type_name} {resource_id} not found.")
        check_if_match(if_match, current.version)
        return current

    @contextmanager
    def _transaction(self, tenant: TenantRef) -> Iterator[Session]:
        """One unit of work, inside the tenant's admission (see `_admitted`)."""
        with self._admitted(tenant), unit_of_work(self._sessions) as session:
            yield session

    def _admitted(self, tenant: TenantRef) -> AbstractContextManager[None]:
        """A write slot for the tenant, or 429 before any work is done."""
        return self._admission.admit(tenant.id) if self._admission else nullcontext()

    def _ring(self, tenant: TenantRef, command: Command) -> None:
        self._dispatcher.ring(tenant.id, urgent=command.deprovisions)


def create_digest(resource: Mapping[str, Any]) -> str:
    """Digest of a created resource's content, to recognise a retried POST.

    The password is left out: its hash is salted, so two identical POSTs never share it.
    """
    content = {k: v for k, v in resource.items() if k != "password"}
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def check_if_match(if_match: str | None, version: int) -> None:
    """RFC 7644 §3.14: a write with a stale `If-Match` ETag fails with 412."""
    if if_match is not None and not names_version(if_match, version):
        raise PreconditionFailed(f"The resource is at version {weak_etag(version)}.")


def _replayed(
    session: Session,
    tenant: TenantRef,
    type_name: str,
    resource: Mapping[str, Any],
    digest: str,
    *,
    existing: AcknowledgedResource | None,
) -> WriteReceipt:
    if existing is not None and existing.create_digest == digest:
        members = _typed_members(session, tenant, resource.get(MEMBERS))
        return WriteReceipt(existing, members, created=False)
    raise Uniqueness(acknowledged.conflict_detail(type_name, resource, existing))


def _without_members(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != MEMBERS}


def _patched_member_values(
    command: Command, patched: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """Member values a group PATCH adds or sets; None when it does not touch members.

    Besides the values the command names (`Command.member_values`), the members the patch
    produced count (the acknowledged state holds no member list, so every member of `patched`
    came from this patch): all must be checked like any other member.
    """
    # An operation on a sub-attribute of every member (`members.display`, no filter) names no
    # member, and the acknowledged state holds none: on its own it changes nothing here.
    if not any(op.whole_list or op.filtered for op in command.member_operations):
        return None
    return [*command.member_values(), *(patched.get(MEMBERS) or [])]


def _check_member_references(
    session: Session,
    tenant: TenantRef,
    members: list[dict[str, Any]] | None,
    group_id: str | None = None,
) -> list[dict[str, Any]] | None:
    """Members must name resources of this tenant (acknowledged, applied or not); returns them
    with their `type`, which a client may leave out and a read always shows.

    A member without a `value` names nobody, and a group cannot be a member of itself: both
    are refused here, since the workers could never apply them.
    """
    if any(not isinstance(m.get("value"), str) for m in members or ()):
        raise InvalidValue("Every member needs a 'value': the id of a user or group.")
    wanted = {m["value"] for m in members or ()}
    if group_id is not None and group_id in wanted:
        raise InvalidValue(f"Group {group_id} cannot be a member of itself.")
    found = acknowledged.existing_types(session, tenant.id, wanted)
    missing = sorted(wanted - found.keys())
    if missing:
        raise InvalidValue(f"Members do not exist: {', '.join(missing[:5])}.")
    for member in members or ():
        declared = member.get("type")
        if declared is not None and found.get(member["value"]) != declared:
            raise InvalidValue(f"Member {member.get('value')} is not a {declared}.")
    return None if members is None else _with_types(members, found)


def _typed_members(
    session: Session, tenant: TenantRef, members: list[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """Members with the `type` a read shows them with (a replayed POST answers as the first
    one did, and the client may have left `type` out)."""
    if not members:
        return members
    wanted = {m["value"] for m in members if isinstance(m.get("value"), str)}
    return _with_types(members, acknowledged.existing_types(session, tenant.id, wanted))


def _with_types(
    members: list[dict[str, Any]], types: Mapping[str, str]
) -> list[dict[str, Any]]:
    # A member deleted since it was written has no type to give: it keeps what it has.
    return [{**m, "type": types[m["value"]]} if m.get("value") in types else m for m in members]
