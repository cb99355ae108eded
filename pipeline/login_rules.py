"""What a login is told, by policy: the table in docs/APPLICATIONS.md, as code. Pure.

A login (the identity an application took from a SAML assertion or an OIDC ID token) either
leads to a known user, found by the identity it came with before or by the shared identifier
SCIM sends (`externalId` or `userName` equal to the subject), or to nobody. The tenant's
`LoginPolicy` then decides whether it may sign in and what the login may write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scimflow.pipeline.errors import Forbidden

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class Mode(StrEnum):
    # Only users SCIM provisioned sign in; a login never creates or changes a user.
    SCIM_AUTHORITATIVE = "scim-authoritative"
    # A login creates a provisional user, which SCIM claims when it provisions the same person.
    JIT_THEN_SCIM = "jit-then-scim"
    # Logins create and update users; SCIM is not expected.
    JIT_ONLY = "jit-only"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    mode: Mode = Mode.JIT_THEN_SCIM
    # The identity providers (`iss` / SAML Issuer) a tenant's logins may come from.
    issuers: tuple[str, ...] = ()
    # Whether a verified email may link a login to a user (never an unverified one).
    match_verified_email: bool = False
    # Whether a login updates the attributes of a user SCIM does not own.
    sync_attributes: bool = True


# A tenant that never set a policy: logins create users until SCIM takes them over.
DEFAULT_POLICY = LoginPolicy()


@dataclass(frozen=True, slots=True)
class LoginIdentity:
    """Who the identity provider says signed in."""

    issuer: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    user_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    groups: tuple[str, ...] = field(default=())

    @property
    def verified_email(self) -> str | None:
        return self.email if self.email_verified else None


class Action(StrEnum):
    CREATED = "created"  # a provisional user was created for the login
    LINKED = "linked"  # the login's identity was linked to an existing user
    UPDATED = "updated"  # the user's attributes were updated from the login
    NONE = "none"  # nothing written but the decision


class Reason(StrEnum):
    ALLOWED = "allowed"
    DEPROVISIONED = "deprovisioned"
    DELETED = "deleted"
    NOT_PROVISIONED = "not_provisioned"
    # The user the login would create cannot take its keys: another user, which the login
    # does not lead to, holds its userName.
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class KnownUser:
    """The user a login leads to, as acknowledged."""

    user_id: str
    scim_owned: bool  # SCIM created it, or claimed it with its first write
    active: bool
    linked: bool  # the login's identity is already linked to it


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reason: Reason
    action: Action


def decide(
    policy: LoginPolicy, known: KnownUser | None, *, deleted: bool, attributes_differ: bool
) -> Decision:
    """The decision for a login that leads to `known` (None: nobody; `deleted`: its identity
    was linked to a user that has since been deleted)."""
    if deleted and known is None:
        return _deny(Reason.DELETED)
    if known is not None and not known.active:
        return _deny(Reason.DEPROVISIONED)
    if known is None:
        if policy.mode is Mode.SCIM_AUTHORITATIVE:
            return _deny(Reason.NOT_PROVISIONED)
        return Decision(True, Reason.ALLOWED, Action.CREATED)
    if policy.mode is Mode.SCIM_AUTHORITATIVE and not known.scim_owned:
        return _deny(Reason.NOT_PROVISIONED)
    return Decision(True, Reason.ALLOWED, _action_for(policy, known, attributes_differ))


def _action_for(policy: LoginPolicy, known: KnownUser, attributes_differ: bool) -> Action:
    if may_update(policy, scim_owned=known.scim_owned) and attributes_differ:
        return Action.UPDATED
    return Action.NONE if known.linked else Action.LINKED


def may_update(policy: LoginPolicy, *, scim_owned: bool) -> bool:
    """Whether a login may write a user's attributes: never those SCIM owns, except under
    jit-only, where logins are the source of truth."""
    if not policy.sync_attributes or policy.mode is Mode.SCIM_AUTHORITATIVE:
        return False
    return policy.mode is Mode.JIT_ONLY or not scim_owned


def conflict() -> Decision:
    return _deny(Reason.CONFLICT)


def _deny(reason: Reason) -> Decision:
    return Decision(False, reason, Action.NONE)


def check_issuer(policy: LoginPolicy, issuer: str) -> None:
    """A login from an issuer the tenant did not name is refused before anything is looked up:
    the application must never pass on an assertion it did not verify against this tenant's
    identity provider."""
    if issuer not in policy.issuers:
        raise UntrustedIssuer(issuer, policy.issuers)


class UntrustedIssuer(Forbidden):
    def __init__(self, issuer: str, trusted: tuple[str, ...]) -> None:
        named = ", ".join(trusted) if trusted else "none (set one with `scimflow tenant policy`)"
        super().__init__(f"Issuer {issuer!r} is not trusted for this tenant; trusted: {named}.")


def user_attributes(identity: LoginIdentity) -> dict[str, Any]:
    """The attributes a login writes (on creation, and on update where it may)."""
    attributes: dict[str, Any] = {}
    name = {k: v for k, v in (("givenName", identity.given_name),
                              ("familyName", identity.family_name)) if v}
    if name:
        attributes["name"] = name
    if identity.display_name:
        attributes["displayName"] = identity.display_name
    if identity.email:
        attributes["emails"] = [{"value": identity.email, "type": "work", "primary": True}]
    return attributes


def provisional_user(identity: LoginIdentity) -> dict[str, Any]:
    """The user a login creates: its keys are the subject (externalId) and the login's user
    name, or the subject, (userName), the shared identifiers SCIM claims it by."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": identity.user_name or identity.subject,
        "externalId": identity.subject,
        "active": True,
        **user_attributes(identity),
    }


def updated_user(current: dict[str, Any], identity: LoginIdentity) -> dict[str, Any]:
    """`current` with the login's attributes; its keys and everything else kept."""
    return {**current, **user_attributes(identity)}
