"""Reading /metrics the way Prometheus does: the text format, parsed, one value per sample."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 for a labelled series never touched (Prometheus shows none)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def webhooks(self, platform: str) -> Callable[[str, str], float]:
        """The count of one platform's webhook requests, by (type, outcome)."""

        def count(kind: str, outcome: str) -> float:
            return self.value(
                "callmemory_webhook_events_total", platform=platform, type=kind, outcome=outcome
            )

        return count


async def scrape(http: httpx.AsyncClient) -> Scrape:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)
