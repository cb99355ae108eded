"""SCIM claiming a user a JIT login created: its first SCIM write (a PUT or PATCH after the
IdP's existence check found it, or a POST whose keys it holds) makes SCIM its owner. From then
on logins no longer write its attributes, and its roles come from its SCIM groups only.
See docs/APPLICATIONS.md ("How SCIM claims a JIT user").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from scimflow.pipeline.events.model import identity_of
from scimflow.pipeline.services.change_events import outbox_rows, roles_changed
from scimflow.pipeline.store import logins, outbox, roles
from scimflow.pipeline.store.acknowledged import AcknowledgedResource


def claimed(
    session: Session, tenant_id: str, user: AcknowledgedResource, *, now: datetime,
    request_id: str,
) -> None:
    """In the claiming write's transaction: the login identities SCIM's keys do not name are
    unlinked; the roles of its logins' group claims go (and `user.roles_changed` says so); its
    group roles follow its SCIM memberships as they apply."""
    logins.unlink_unmatched(session, tenant_id, user.id,
                            external_id=user.data.get("externalId"),
                            user_name=user.data.get("userName"))
    change = roles.drop_claim_roles(session, tenant_id, user.id)
    if change is None:
        return
    event = roles_changed(change, version=user.version, identity=identity_of("User", user.data),
                          request_id=request_id)
    outbox.append(session, outbox_rows([event], now))
