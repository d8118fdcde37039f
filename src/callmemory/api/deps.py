"""Small dependencies that hand the lifespan's services to handlers, so that a route's signature says
which of them it uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from callmemory.calls.handler import CallHandler
from callmemory.conversation.prompt import PromptBuilder
from callmemory.memory.erasure import Eraser
from callmemory.memory.greeting import Greetings
from callmemory.memory.records import CallerRecords
from callmemory.memory.service import MemoryService
from callmemory.observability.metrics import Metrics
from callmemory.services import Services
from callmemory.settings import Settings


# All async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per dependency per
# request, which profiling showed to be the largest cost of a webhook under load.
async def get_services(request: Request) -> Services:
    services: Services = request.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_calls(services: ServicesDep) -> CallHandler:
    return services.calls


async def get_memory(services: ServicesDep) -> MemoryService:
    return services.memory


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_prompt(services: ServicesDep) -> PromptBuilder:
    return services.prompt


async def get_greetings(services: ServicesDep) -> Greetings:
    return services.greetings


async def get_records(services: ServicesDep) -> CallerRecords:
    return services.records


async def get_eraser(services: ServicesDep) -> Eraser:
    return services.eraser


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


CallsDep = Annotated[CallHandler, Depends(get_calls)]
MemoryDep = Annotated[MemoryService, Depends(get_memory)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PromptDep = Annotated[PromptBuilder, Depends(get_prompt)]
GreetingsDep = Annotated[Greetings, Depends(get_greetings)]
RecordsDep = Annotated[CallerRecords, Depends(get_records)]
ErasureDep = Annotated[Eraser, Depends(get_eraser)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
