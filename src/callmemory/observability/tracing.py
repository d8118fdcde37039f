"""Optional OpenTelemetry tracing: spans around what the metrics time, exported over OTLP/HTTP.

Off unless CALLMEMORY_OTLP_ENDPOINT is set, and the opentelemetry packages (the `otel` extra) are
imported only then. The tracer provider is the app's own, not the process-wide global one, for the
same reason the metrics registry is (several apps in one test process, each torn down with its app).
Span attributes are the metric labels (platform, event type, outcome, source) plus request and call
ids: never a number or what was said.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from callmemory.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


class Span(Protocol):
    def set_attribute(self, key: str, value: str) -> None: ...


class Spans(Protocol):
    """What the metrics need of a tracer: a span around a timed block, current for what it calls."""

    def span(self, name: str) -> AbstractContextManager[Span]: ...


class OtelSpans:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def span(self, name: str) -> AbstractContextManager[Span]:
        return self._tracer.start_as_current_span(name)


@dataclass(frozen=True, slots=True)
class Tracing:
    spans: Spans | None = None  # None: tracing is off
    close: Callable[[], None] = lambda: None  # exports the spans still batched


def start_tracing(settings: Settings) -> Tracing:
    """The app's tracing, if configured: close it when the app stops."""
    if settings.otlp_endpoint is None:
        return Tracing()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError(
            "CALLMEMORY_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'callmemory[otel]'"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return Tracing(OtelSpans(provider.get_tracer("callmemory")), provider.shutdown)
