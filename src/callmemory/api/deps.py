"""Small dependencies that hand the lifespan's services to handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from callmemory.core.calls import CallHandler
from callmemory.memory.service import MemoryService
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


CallsDep = Annotated[CallHandler, Depends(get_calls)]
MemoryDep = Annotated[MemoryService, Depends(get_memory)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
