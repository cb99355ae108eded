"""`/Groups`: PATCH answers 204 No Content.

Entra expects 204 for group PATCH and Okta accepts it (Microsoft's SCIM endpoint tutorial,
Okta's SCIM 2.0 reference); it also spares rendering a membership the workers have not applied
yet. A PATCH that asks for
`attributes` / `excludedAttributes` still gets 200 with the group (RFC 7644 §3.5.2).
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from scimflow.api.resources.collection import ResourceEndpoint
from scimflow.api.services import ApiServices


def groups_endpoint(services: ApiServices) -> ResourceEndpoint:
    return ResourceEndpoint(services, "Group", patch_returns_resource=False)
