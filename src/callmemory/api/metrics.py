"""`GET /metrics`: the Prometheus scrape target, and the dependency that hands handlers the metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from callmemory.api.deps import ServicesDep
from callmemory.observability.metrics import Metrics

router = APIRouter(tags=["operations"])


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


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
async def metrics(services: ServicesDep) -> Response:
    for gauge, count in (
        (services.metrics.pending_archives, services.memory.pending_archives),
        (services.metrics.quarantined_archives, services.memory.quarantined_archives),
    ):
        if (value := await count()) is not None:  # Redis down: the last value stands, not a false zero
            gauge.set(value)
    body, content_type = services.metrics.exposition()
    return Response(body, media_type=content_type)
