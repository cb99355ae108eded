"""Endpoints RFC 7644 defines but scimflow does not implement: 501 for every method.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""

from __future__ import annotations

import falcon

from scimflow.pipeline.errors import NotImplementedFeature


class NotImplementedEndpoint:
    def __init__(self, detail: str) -> None:
        self._detail = detail

    def _refuse(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise NotImplementedFeature(self._detail)

    on_get = on_post = on_put = on_patch = on_delete = _refuse
