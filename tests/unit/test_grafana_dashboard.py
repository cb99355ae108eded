"""ops/grafana/scimflow.json: valid JSON whose every query names metrics scimflow exports,
and covers what an operator needs on one screen."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

import scimflow.api.metrics
import scimflow.workers.metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "scimflow.json"
# Collected at scrape time from the database, so not in the default registry.
SCRAPE_TIME = {"scimflow_backlog", "scimflow_oldest_pending_seconds"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return loaded


def exported_samples() -> set[str]:
    """Every sample name the API's and the workers' metrics can produce (a counter's `_total`,
    a histogram's `_bucket`, `_sum`, `_count`), as the registry knows them."""
    names: dict[str, object] = REGISTRY._names_to_collectors  # no public list of them
    return {name for name in names if name.startswith("scimflow_")}


def test_every_query_names_an_exported_metric() -> None:
    known = exported_samples() | SCRAPE_TIME
    used = {name for panel in dashboard()["panels"] for target in panel["targets"]
            for name in re.findall(r"scimflow_[a-z_]+", target["expr"])}
    assert used, "no scimflow metric queried"
    assert used <= known, used - known
    # Both modules' metrics are registered by importing them.
    assert {scimflow.api.metrics.REQUESTS, scimflow.workers.metrics.APPLIED} <= set(
        REGISTRY._names_to_collectors.values())


def test_the_dashboard_covers_the_operators_questions() -> None:
    titles = {panel["title"] for panel in dashboard()["panels"]}
    assert titles == {"Requests by status", "Acknowledgement latency", "Refusals (429 / 503)",
                      "Backlog per tenant", "Oldest pending per tenant", "Applied per second",
                      "Batch size", "Dead letters", "Deprovision latency", "Webhook deliveries"}
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p["targets"])
    assert "histogram_quantile(0.99, sum by (le) (rate(scimflow_deprovision_latency" in exprs
    assert "histogram_quantile(0.5, sum by (le) (rate(scimflow_ack_latency" in exprs


def test_panels_use_the_chosen_data_source_and_do_not_overlap() -> None:
    board = dashboard()
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, panel["title"]
        cells |= mine
