"""Claiming work for a drain batch: deprovisioning first, then a fair share for every tenant.

A deprovisioning batch is small and applies in milliseconds, where a batch of 200 creates on a
busy machine can take a second, and a revoked session must not wait for that.
See docs/ARCHITECTURE.md ("The path through the workers", "Absorbing a large initial sync").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, bindparam, text
from sqlalchemy.orm import Session

from scimflow.pipeline.store.db import is_postgres
from scimflow.pipeline.store.models import UtcDateTime

# How many times the batch size a worker looks ahead for resources no other worker holds.
CLAIM_LOOKAHEAD = 4
# Pending entries read per resource to claim (a resource usually has one or two waiting).
ENTRIES_PER_RESOURCE = 2

_READY_BY_TURN = """
ready AS (
    SELECT tenant_id, resource_id, min(lane) AS lane, min(seq) AS first_seq
    FROM oldest GROUP BY tenant_id, resource_id
),
first_lane AS (
    SELECT tenant_id, resource_id, lane, first_seq FROM ready
    WHERE lane = (SELECT min(lane) FROM ready)
),
turns AS (
    SELECT tenant_id, resource_id, lane, first_seq,
           row_number() OVER (PARTITION BY tenant_id ORDER BY first_seq) AS turn
    FROM first_lane
)
"""

_POSTGRES = text(f"""
WITH RECURSIVE waiting(tenant_id) AS (
    (SELECT tenant_id FROM journal
     WHERE status = 'pending' AND (CAST(:only_tenant AS text) IS NULL OR tenant_id = :only_tenant)
     ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT j.tenant_id FROM journal j
            WHERE j.status = 'pending' AND j.tenant_id > w.tenant_id
              AND (CAST(:only_tenant AS text) IS NULL OR j.tenant_id = :only_tenant)
            ORDER BY j.tenant_id LIMIT 1)
    FROM waiting w WHERE w.tenant_id IS NOT NULL
),
oldest AS (
    SELECT o.tenant_id, o.resource_id, o.lane, o.seq
    FROM waiting w CROSS JOIN LATERAL (
        SELECT j.tenant_id, j.resource_id, j.lane, j.seq FROM journal j
        WHERE j.status = 'pending' AND j.tenant_id = w.tenant_id
          AND (j.not_before IS NULL OR j.not_before <= :now)
        ORDER BY j.lane, j.seq LIMIT :scan
    ) o
    WHERE w.tenant_id IS NOT NULL
),
{_READY_BY_TURN},
candidates AS (
    SELECT tenant_id, resource_id FROM turns
    ORDER BY turn, first_seq LIMIT :candidates
)
SELECT tenant_id, resource_id FROM candidates
WHERE pg_try_advisory_xact_lock(hashtextextended(tenant_id || ':' || resource_id, 0))
LIMIT :limit
""")

# The embedded mode has a single drainer and small backlogs: nothing to split, nothing to
# lock, and one pass over the pending entries is cheap.
_SQLITE = text(f"""
WITH oldest AS (
    SELECT tenant_id, resource_id, lane, seq FROM journal
    WHERE status = 'pending' AND (:only_tenant IS NULL OR tenant_id = :only_tenant)
      AND (not_before IS NULL OR not_before <= :now)
),
{_READY_BY_TURN}
SELECT tenant_id, resource_id FROM turns ORDER BY turn, first_seq LIMIT :limit
""")


def ready_resources(
    session: Session, *, now: datetime, limit: int, tenant_id: str | None = None
) -> list[tuple[str, str]]:
    """Up to `limit` resources with due pending commands: deprovisioning alone, or fair turns.

    A resource whose oldest entry is postponed may be returned once, when an entry behind it
    is due; the caller skips it and gives those entries the postponed one's due time
    (`journal.hold_behind`), so it is not returned again before it is due. `tenant_id`
    restricts the claim to one tenant.
    """
    params = {"now": now, "limit": limit, "only_tenant": tenant_id}
    if is_postgres(session):
        statement = _POSTGRES
        params |= {"scan": limit * CLAIM_LOOKAHEAD * ENTRIES_PER_RESOURCE,
                   "candidates": limit * CLAIM_LOOKAHEAD}
    else:
        statement = _SQLITE
    typed = statement.bindparams(bindparam("now", type_=UtcDateTime()),
                                 bindparam("only_tenant", type_=String()))
    return [(row.tenant_id, row.resource_id) for row in session.execute(typed, params)]
