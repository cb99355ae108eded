"""The connection budget formula, and PgBouncer's prepared-statement caveat."""

from __future__ import annotations

from scimflow.ops.connection_budget import TOOL_CONNECTIONS, Budget
from scimflow.pipeline.settings import Settings


def test_budget_is_the_documented_formula() -> None:
    settings = Settings(api_processes=3, api_pool_size=5, api_pool_overflow=2,
                        worker_replicas=4, worker_concurrency=2, webhook_workers=3)
    budget = Budget.of(settings)
    assert (budget.api, budget.workers, budget.events, budget.tools) == (
        21, 8, 3, TOOL_CONNECTIONS
    )
    assert budget.total == 21 + 8 + 3 + TOOL_CONNECTIONS


def test_settings_read_the_budget_from_the_environment() -> None:
    settings = Settings.from_env({"SCIMFLOW_API_PROCESSES": "4", "SCIMFLOW_PGBOUNCER": "true"})
    assert settings.api_processes == 4
    assert settings.pgbouncer is True
