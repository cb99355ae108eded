"""What operators see per tenant, as `scimflow status` prints it: the read model the console
shows too (pipeline/services/operations.py), as plain values.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from scimflow.pipeline.services.operations import tenant_overviews


def tenant_status(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    """One row per tenant, by name; each figure from one aggregate query over all tenants."""
    return [{"tenant": figures.name, **asdict(figures)}
            for figures in tenant_overviews(session, now=now)]
