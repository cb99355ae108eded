"""Tenants' login policies, the identities logins came with (and the users they are linked
to), and every login decision. See docs/APPLICATIONS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from scimflow.pipeline.login_rules import (
    DEFAULT_POLICY,
    Decision,
    LoginIdentity,
    LoginPolicy,
    Mode,
)
from scimflow.pipeline.scim.unicode import fold_key
from scimflow.pipeline.store.acknowledged import JIT
from scimflow.pipeline.store.app_tables import LoginDecision
from scimflow.pipeline.store.app_tables import LoginIdentity as IdentityRow
from scimflow.pipeline.store.app_tables import LoginPolicy as PolicyRow
from scimflow.pipeline.store.models import AcknowledgedRow


def policy_of(session: Session, tenant_id: str) -> LoginPolicy:
    row = session.get(PolicyRow, tenant_id)
    if row is None:
        return DEFAULT_POLICY
    return LoginPolicy(Mode(row.mode), tuple(row.issuers), row.match_verified_email,
                       row.sync_attributes)


def set_policy(session: Session, tenant_id: str, policy: LoginPolicy, *, now: datetime) -> None:
    values = {"mode": policy.mode.value, "issuers": list(policy.issuers),
              "match_verified_email": policy.match_verified_email,
              "sync_attributes": policy.sync_attributes, "updated_at": now}
    updated = session.execute(update(PolicyRow).where(PolicyRow.tenant_id == tenant_id)
                              .values(**values))
    if not updated.rowcount:  # type: ignore[attr-defined]
        session.execute(insert(PolicyRow).values(tenant_id=tenant_id, **values))


def linked_user(session: Session, tenant_id: str, identity: LoginIdentity) -> str | None:
    """The user this identity was linked to by an earlier login (perhaps deleted since)."""
    return session.scalar(select(IdentityRow.user_id).where(
        IdentityRow.tenant_id == tenant_id, IdentityRow.issuer == identity.issuer,
        IdentityRow.subject == identity.subject))


def link(
    session: Session, tenant_id: str, identity: LoginIdentity, user_id: str, *, now: datetime
) -> None:
    """Link the identity to the user (again), with its last login's verified email and
    group claims."""
    email = identity.verified_email
    values = {"user_id": user_id, "email_key": fold_key(email) if email else None,
              "group_claims": list(identity.groups), "last_login_at": now}
    updated = session.execute(update(IdentityRow).where(
        IdentityRow.tenant_id == tenant_id, IdentityRow.issuer == identity.issuer,
        IdentityRow.subject == identity.subject).values(**values))
    if not updated.rowcount:  # type: ignore[attr-defined]
        session.execute(insert(IdentityRow).values(
            tenant_id=tenant_id, issuer=identity.issuer, subject=identity.subject,
            created_at=now, **values))


def unlink_unmatched(
    session: Session, tenant_id: str, user_id: str, *, external_id: str | None,
    user_name: str | None,
) -> int:
    """Unlink the identities of a user SCIM just claimed whose subject is neither its
    externalId nor its userName: a login may have given the JIT user a userName that was not
    its subject, and SCIM claiming that user must not hand it to that login. How many."""
    keys = {fold_key(user_name)} if user_name else set()
    rows = session.execute(select(IdentityRow.issuer, IdentityRow.subject).where(
        IdentityRow.tenant_id == tenant_id, IdentityRow.user_id == user_id)).all()
    stale = [(issuer, subject) for issuer, subject in rows
             if subject != external_id and fold_key(subject) not in keys]
    for issuer, subject in stale:
        session.execute(delete(IdentityRow).where(
            IdentityRow.tenant_id == tenant_id, IdentityRow.issuer == issuer,
            IdentityRow.subject == subject))
    return len(stale)


def jit_user_with_email(session: Session, tenant_id: str, email: str) -> str | None:
    """A user a login created (and SCIM has not claimed yet) whose verified email this is."""
    return session.scalar(
        select(IdentityRow.user_id)
        .join(AcknowledgedRow, (AcknowledgedRow.tenant_id == IdentityRow.tenant_id)
              & (AcknowledgedRow.id == IdentityRow.user_id))
        .where(IdentityRow.tenant_id == tenant_id, IdentityRow.email_key == fold_key(email),
               AcknowledgedRow.source == JIT)
        .limit(1)
    )


def identities_with_claims(session: Session, tenant_id: str) -> list[tuple[str, list[str]]]:
    """(user id, group claims) of every identity of the tenant whose user SCIM does not own."""
    rows = session.execute(
        select(IdentityRow.user_id, IdentityRow.group_claims)
        .join(AcknowledgedRow, (AcknowledgedRow.tenant_id == IdentityRow.tenant_id)
              & (AcknowledgedRow.id == IdentityRow.user_id))
        .where(IdentityRow.tenant_id == tenant_id, AcknowledgedRow.source == JIT)
    )
    return [(user_id, list(claims or ())) for user_id, claims in rows]


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    issuer: str
    subject: str
    policy: str
    decision: str
    reason: str
    action: str
    request_id: str
    at: datetime


def record(
    session: Session,
    tenant_id: str,
    user_id: str | None,
    identity: LoginIdentity,
    *,
    policy: LoginPolicy,
    decision: Decision,
    request_id: str,
    now: datetime,
) -> None:
    session.execute(insert(LoginDecision).values(
        tenant_id=tenant_id, user_id=user_id, issuer=identity.issuer, subject=identity.subject,
        policy=policy.mode.value, decision="allow" if decision.allow else "deny",
        reason=decision.reason.value, action=decision.action.value, request_id=request_id,
        created_at=now))


def decisions_of(session: Session, tenant_id: str, user_id: str) -> list[RecordedDecision]:
    rows = session.execute(
        select(LoginDecision.issuer, LoginDecision.subject, LoginDecision.policy,
               LoginDecision.decision, LoginDecision.reason, LoginDecision.action,
               LoginDecision.request_id, LoginDecision.created_at)
        .where(LoginDecision.tenant_id == tenant_id, LoginDecision.user_id == user_id)
        .order_by(LoginDecision.id)
    )
    return [RecordedDecision(*row) for row in rows]
