"""`GET /metrics`: the Prometheus scrape target."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from callmemory.api.deps import MemoryDep, MetricsDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "The Prometheus text format: webhook events by platform, type and outcome; latency histograms "
        "of memory reads, LLM requests and archive writes; rehydrations, pending and quarantined "
        "archives, archive refusals, flusher and sweeper runs, LLM fallbacks and summary jobs. Summed "
        "over every worker of `callmemory serve`."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "Metrics in the text format",
            "content": {
                "text/plain": {
                    "example": "# TYPE callmemory_webhook_events_total counter\n"
                    'callmemory_webhook_events_total{outcome="applied",platform="seed",type="call.ringing"} '
                    "12.0\n"
                }
            },
        }
    },
)
async def metrics(registry: MetricsDep, memory: MemoryDep) -> Response:
    for gauge, count in (
        (registry.pending_archives, memory.pending_archives),
        (registry.quarantined_archives, memory.quarantined_archives),
    ):
        if (value := await count()) is not None:  # Redis down: the last value stands, not a false zero
            gauge.set(value)
    body, content_type = registry.exposition()
    return Response(body, media_type=content_type)
