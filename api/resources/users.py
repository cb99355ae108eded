"""`/Users`: PATCH answers 200 with the user, which Okta reads back after (de)activation.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

from scimflow.api.resources.collection import ResourceEndpoint
from scimflow.api.services import ApiServices


def users_endpoint(services: ApiServices) -> ResourceEndpoint:
    return ResourceEndpoint(services, "User", patch_returns_resource=True)
