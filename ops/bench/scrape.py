"""The stack's own /metrics, scraped at the end of the sync and set beside the benchmark's
counts: requests the load generator sent and the 429s it received against the API's request
counters, users the database holds applied against the workers' applied-commands counter.

The two sides are counted independently (the client's tally and the journal on one side,
prometheus-client's multiprocess files on the other), so their agreement checks the metrics.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# The API's resource-type labels of SCIM requests (api/metrics.py): what the IdP sends.
SCIM_TYPES = frozenset({"Users", "Groups", ".search", "ServiceProviderConfig",
                        "ResourceTypes", "Schemas", "Me", "Bulk"})


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a /metrics page: (name, labels, value)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def total(samples: list[tuple[str, dict[str, str], float]], name: str,
          where: Callable[[dict[str, str]], bool] = lambda _: True) -> int:
    return round(sum(value for sample, labels, value in samples
                     if sample == name and where(labels)))


def api_figures(api_url: str) -> dict[str, int]:
    samples = scrape(f"{api_url}/metrics")
    requests = "scimflow_http_requests_total"
    return {
        "scim_requests": total(samples, requests, lambda lb: lb["resource_type"] in SCIM_TYPES),
        "throttled_429": total(samples, requests, lambda lb: lb["resource_type"] in SCIM_TYPES
                               and lb["status"] == "429"),
        "refused_503": total(samples, requests, lambda lb: lb["resource_type"] in SCIM_TYPES
                             and lb["status"] == "503"),
        "ack_latency_observations": total(samples, "scimflow_ack_latency_seconds_count"),
    }


def worker_figures(worker_url: str) -> dict[str, int]:
    samples = scrape(f"{worker_url}/metrics")
    applied = "scimflow_applied_commands_total"
    return {
        "user_creates_applied": total(samples, applied, lambda lb: lb["resource_type"] == "User"
                                      and lb["kind"] == "create"),
        "commands_applied": total(samples, applied),
        "dead_letters": total(samples, "scimflow_dead_letters_total"),
        "deprovisions_observed": total(samples, "scimflow_deprovision_latency_seconds_count"),
    }


def compare(api_url: str, worker_url: str, *, requests: int, throttled_429: int,
            users_applied: int, settle_seconds: float = 10.0) -> dict[str, Any]:
    """Scrape both, and say whether they agree with the benchmark's counts.

    The workers count a batch just after committing it, so the database can show the last
    users applied a moment before the counter does: the workers are scraped again until they
    agree or `settle_seconds` pass.
    """
    bench = {"scim_requests": requests, "throttled_429": throttled_429,
             "user_creates_applied": users_applied}
    try:
        api = api_figures(api_url)
        deadline = time.monotonic() + settle_seconds
        workers = worker_figures(worker_url)
        while workers["user_creates_applied"] != users_applied and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = worker_figures(worker_url)
    except OSError as ex:  # a benchmark's figures are worth more than this comparison
        return {"error": f"scraping /metrics failed: {ex}", "bench": bench, "agrees": False}
    agrees = (api["scim_requests"] == requests and api["throttled_429"] == throttled_429
              and workers["user_creates_applied"] == users_applied)
    return {"api": api, "workers": workers, "bench": bench, "agrees": agrees}
