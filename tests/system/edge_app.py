"""The API on a SQLite file and no broker: what tests/system/test_edge.py serves with gunicorn.

The HTTP edge is under test there, not the queue, so nothing but the API process has to run.
"""

from __future__ import annotations

from scimflow.api.wsgi import build_app
from scimflow.pipeline.settings import Settings


class _NoBroker:
    def ring(self, tenant_id: str, *, urgent: bool = False) -> None:
        return None


app = build_app(Settings.from_env(), _NoBroker())
