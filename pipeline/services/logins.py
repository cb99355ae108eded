"""JIT logins: the application passes on the identity of a verified SAML assertion or OIDC ID
token, and is told whether it may sign in, who the user is (with roles), and what the login
wrote. The tenant's policy decides (`pipeline/login_rules.py`); every decision is recorded.
See docs/APPLICATIONS.md ("Where to call the login hook", "Login decisions").

A login and a SCIM write for the same person meet at the acknowledged state's unique keys: a
user a login creates holds the subject as its externalId (and the login's user name, or the
subject, as its userName), so a concurrent SCIM POST of that person either claims it (it was
first) or is found by the login (the POST was first). Never two users.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scimflow.pipeline.column_limits import check_storable
from scimflow.pipeline.errors import InvalidValue, Uniqueness
from scimflow.pipeline.events.model import identity_of
from scimflow.pipeline.login_rules import (
    USER_SCHEMA,
    Action,
    Decision,
    KnownUser,
    LoginIdentity,
    LoginPolicy,
    check_issuer,
    conflict,
    decide,
    provisional_user,
    updated_user,
)
from scimflow.pipeline.ports import Clock, Dispatcher, utc_now
from scimflow.pipeline.scim.protocol import ScimProtocol
from scimflow.pipeline.scim.unicode import is_storable_text
from scimflow.pipeline.services.app_users import USER, AppUser, app_user, is_active
from scimflow.pipeline.services.change_events import outbox_rows, roles_changed
from scimflow.pipeline.services.tenant_protocols import ProtocolSource
from scimflow.pipeline.services.writes import create_digest
from scimflow.pipeline.store import acknowledged, batched_creates, journal, logins, outbox, roles
from scimflow.pipeline.store.acknowledged import JIT, SCIM, AcknowledgedResource
from scimflow.pipeline.store.db import unit_of_work
from scimflow.pipeline.store.tenants import TenantRef

MAX_CLAIM = 512
MAX_GROUP_CLAIMS = 1000


@dataclass(frozen=True, slots=True)
class LoginResult:
    decision: Decision
    policy: LoginPolicy
    user: AppUser | None


@dataclass(frozen=True, slots=True)
class _Found:
    """The user a login leads to (locked), and whether its linked user was deleted."""

    user: AcknowledgedResource | None
    linked_id: str | None

    @property
    def deleted(self) -> bool:
        return self.linked_id is not None and self.user is None


class LoginService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        protocols: ProtocolSource,
        dispatcher: Dispatcher,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._protocols = protocols
        self._dispatcher = dispatcher
        self._clock = clock

    def login(self, tenant: TenantRef, identity: LoginIdentity, *, request_id: str) -> LoginResult:
        """Decide a login, write what the policy lets it write, record the decision."""
        try:
            result, journaled = self._login(tenant, identity, request_id)
        except Uniqueness:
            # A SCIM write (or another login) took the user's keys meanwhile: the user now
            # exists, and looking again finds it.
            try:
                result, journaled = self._login(tenant, identity, request_id)
            except Uniqueness:
                # Not a race: another user holds the userName the login would create.
                return self._conflict(tenant, identity, request_id)
        if journaled:
            self._dispatcher.ring(tenant.id, urgent=False)
        return result

    def _conflict(
        self, tenant: TenantRef, identity: LoginIdentity, request_id: str
    ) -> LoginResult:
        with unit_of_work(self._sessions) as session:
            policy = logins.policy_of(session, tenant.id)
            logins.record(session, tenant.id, None, identity, policy=policy, decision=conflict(),
                          request_id=request_id, now=self._clock())
        return LoginResult(conflict(), policy, None)

    def _login(
        self, tenant: TenantRef, identity: LoginIdentity, request_id: str
    ) -> tuple[LoginResult, bool]:
        protocol = self._protocols.for_tenant(tenant.id)
        now = self._clock()
        with unit_of_work(self._sessions) as session:
            policy = logins.policy_of(session, tenant.id)
            check_issuer(policy, identity.issuer)
            found = _find(session, tenant.id, identity, policy)
            current = found.user
            decision = decide(
                policy, _known(current, found.linked_id), deleted=found.deleted,
                attributes_differ=current is not None
                and updated_user(current.data, identity) != current.data,
            )
            write = _LoginWrite(session, tenant.id, protocol, now, request_id)
            user, journaled = current, False
            if decision.action is Action.CREATED:
                user, journaled = write.create(identity), True
            elif decision.action is Action.UPDATED and current is not None:
                user, journaled = write.update(current, identity), True
            held: tuple[str, ...] = ()
            if decision.allow and user is not None:
                logins.link(session, tenant.id, identity, user.id, now=now)
                held = write.roles(user, identity)
            logins.record(session, tenant.id, user.id if user else found.linked_id, identity,
                          policy=policy, decision=decision, request_id=request_id, now=now)
        return LoginResult(decision, policy, app_user(user, held) if user else None), journaled


@dataclass(frozen=True, slots=True)
class _LoginWrite:
    """What a login writes, in its transaction."""

    session: Session
    tenant_id: str
    protocol: ScimProtocol
    now: datetime
    request_id: str

    def create(self, identity: LoginIdentity) -> AcknowledgedResource:
        """The provisional user of a login: acknowledged and journaled as a SCIM create is."""
        command = self.protocol.validate_create(USER, str(uuid.uuid4()),
                                                provisional_user(identity))
        resource = command.resource or {}
        check_storable(USER, resource)
        new = batched_creates.new_resource(self.tenant_id, command, resource, now=self.now,
                                           create_digest=create_digest(resource),
                                           request_id=self.request_id)
        new.resource["source"] = JIT
        if not batched_creates.insert_created(self.session, new):
            raise Uniqueness("The user's keys were taken meanwhile.")
        return AcknowledgedResource(command.resource_id, USER, 1, resource, self.now, self.now,
                                    source=JIT)

    def update(
        self, current: AcknowledgedResource, identity: LoginIdentity
    ) -> AcknowledgedResource:
        """The login's attributes written over the user's (its keys and the rest kept)."""
        # The acknowledged state keeps no `schemas`; a replace body needs them.
        body = {"schemas": [USER_SCHEMA], **updated_user(current.data, identity)}
        command = self.protocol.validate_replace(USER, current.id, body, current.data)
        state = command.resource or {}
        check_storable(USER, state)
        saved = acknowledged.save(self.session, self.tenant_id, current, state, now=self.now,
                                  source=current.source)
        journal.append(self.session, self.tenant_id, command, now=self.now,
                       request_id=self.request_id)
        return saved

    def roles(self, user: AcknowledgedResource, identity: LoginIdentity) -> tuple[str, ...]:
        """The user's roles; a user SCIM does not own takes those of the login's group claims
        (reported as `user.roles_changed` when they change)."""
        key = (self.tenant_id, user.id)
        if user.source == JIT:
            change = roles.set_claim_roles(self.session, self.tenant_id, user.id, identity.groups)
            if change is not None:
                event = roles_changed(change, version=user.version,
                                      identity=identity_of(USER, user.data),
                                      request_id=self.request_id)
                outbox.append(self.session, outbox_rows([event], self.now))
        return roles.roles_of(self.session, [key]).get(key, ())


def _find(
    session: Session, tenant_id: str, identity: LoginIdentity, policy: LoginPolicy
) -> _Found:
    """The user of an identity linked before, else the user SCIM (or a login) gave the subject
    as externalId or userName, else (if the tenant allows it) the user whose userName is the
    login's verified email, or a login-created user with that verified email."""
    linked_id = logins.linked_user(session, tenant_id, identity)
    candidate = acknowledged.get(session, tenant_id, USER, linked_id) if linked_id else None
    if candidate is None:
        candidate = acknowledged.find_user(session, tenant_id, external_id=identity.subject,
                                           user_names=[identity.subject])
    email = identity.verified_email
    if candidate is None and email and policy.match_verified_email:
        candidate = acknowledged.find_user(session, tenant_id, user_names=[email])
        jit_id = None if candidate else logins.jit_user_with_email(session, tenant_id, email)
        if jit_id is not None:
            candidate = acknowledged.get(session, tenant_id, USER, jit_id)
    if candidate is not None:
        # Locked until the commit: a concurrent SCIM write of the user waits for the login.
        candidate = acknowledged.get(session, tenant_id, USER, candidate.id, for_update=True)
    return _Found(candidate, linked_id)


def _known(user: AcknowledgedResource | None, linked_id: str | None) -> KnownUser | None:
    if user is None:
        return None
    return KnownUser(user.id, user.source == SCIM, is_active(user.data),
                     linked=user.id == linked_id)


def identity_from(body: Any) -> LoginIdentity:
    """A login's identity from its JSON body (docs/APPLICATIONS.md); 400 when malformed."""
    if not isinstance(body, Mapping):
        raise InvalidValue("A login is a JSON object.")
    issuer, subject = _claim(body, "issuer", required=True), _claim(body, "subject", required=True)
    groups = body.get("groups", [])
    if not isinstance(groups, list) or len(groups) > MAX_GROUP_CLAIMS or not all(
            isinstance(g, str) and 0 < len(g) <= MAX_CLAIM and is_storable_text(g)
            for g in groups):
        raise InvalidValue(f"'groups' is a list of at most {MAX_GROUP_CLAIMS} group names or ids.")
    verified = body.get("email_verified", False)
    if not isinstance(verified, bool):
        raise InvalidValue("'email_verified' is true or false.")
    return LoginIdentity(
        issuer=issuer or "", subject=subject or "", email=_claim(body, "email"),
        email_verified=verified, user_name=_claim(body, "user_name"),
        given_name=_claim(body, "given_name"), family_name=_claim(body, "family_name"),
        display_name=_claim(body, "name"), groups=tuple(dict.fromkeys(groups)),
    )


def _claim(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if (not isinstance(value, str) or not value.strip() or len(value) > MAX_CLAIM
            or not is_storable_text(value)):
        raise InvalidValue(f"'{name}' must be a non-empty string of at most {MAX_CLAIM} "
                           "characters." if required or value is not None else "")
    return value
