"""With an OTLP endpoint configured, a call's webhooks, memory reads, LLM requests and archive write are
exported as spans (to a local collector stub) carrying ids and outcomes, never the caller's number."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from callmemory.devtools.local_server import served
from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.phone import Phone

CALLER = "+14155553344"


class Collector:
    """Receives OTLP/HTTP trace exports, as an OpenTelemetry collector would."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        self.exports.append(export)
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[tuple[str, dict[str, str]]]:
        return [
            (span.name, {a.key: a.value.string_value for a in span.attributes})
            for export in self.exports
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    stub = Collector()
    async with served(Starlette(routes=[Route("/v1/traces", stub.traces, methods=["POST"])])) as url:
        yield stub, f"{url}/v1/traces"


async def test_a_call_is_traced_to_the_configured_collector(
    settings: Settings, llm: FakeLLM, collector: tuple[Collector, str]
) -> None:
    stub, endpoint = collector
    async with running(settings.model_copy(update={"otlp_endpoint": endpoint})) as http:
        call_id, _ = await Phone(http, caller=CALLER).call("Where is my order?")

    spans = stub.spans()  # the app's shutdown exported them
    names = [name for name, _ in spans]
    webhooks = [attrs for name, attrs in spans if name == "webhook seed"]

    assert {"memory read", "llm request", "archive write"} <= set(names)
    assert [(w["type"], w["outcome"]) for w in webhooks] == [
        ("ringing", "answered"),
        ("speech", "answered"),
        ("hangup", "archived"),
    ]
    assert all(w["call_id"] == call_id and len(w["caller"]) == 12 for w in webhooks)
    assert not any(CALLER in value or CALLER[1:] in value for _, attrs in spans for value in attrs.values())
