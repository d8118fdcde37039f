"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from callmemory.api.deps import MemoryDep
from callmemory.api.errors import example

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="The process is alive",
    description="For a liveness probe: answers 200 as long as the process serves HTTP, without touching "
    "Redis or Postgres (a store outage must not get healthy processes restarted). Use /readyz to take an "
    "instance out of a load balancer.",
    responses={200: example("Alive", {"status": "ok"})},
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Whether the service can answer calls, and what is degraded",
    description=(
        "200 `ok` when Redis and Postgres answer. 200 `degraded` when only Postgres is down (or does not "
        "answer within CALLMEMORY_READY_TIMEOUT_S): callers are still answered from Redis memory and ended "
        "calls wait in Redis (`pending_archives`) for the flusher; also `degraded` while calls that "
        "Postgres refused are quarantined (`quarantined`, see `callmemory quarantine list`). 503 "
        "`unavailable` when Redis is down: no call can be answered."
    ),
    responses={
        200: {
            "description": "Calls are answered",
            "content": {
                "application/json": {
                    "example": {
                        "status": "degraded",
                        "checks": {"redis": True, "postgres": False},
                        "pending_archives": 3,
                        "quarantined": 0,
                    }
                }
            },
        },
        503: {
            "description": "Redis does not answer",
            "content": {
                "application/json": {
                    "example": {
                        "status": "unavailable",
                        "checks": {"redis": False, "postgres": True},
                        "pending_archives": None,
                        "quarantined": None,
                    }
                }
            },
        },
    },
)
async def readyz(memory: MemoryDep) -> Any:
    checks, pending, quarantined = await asyncio.gather(
        memory.ready(), memory.pending_archives(), memory.quarantined_archives()
    )
    # Postgres alone down does not take the service out of rotation: every instance shares it, and
    # pulling them all would stop answering callers that Redis alone can serve. Nor does a quarantined
    # call, which needs an operator, not another instance.
    healthy = all(checks.values()) and not quarantined
    status = "ok" if healthy else "degraded" if checks["redis"] else "unavailable"
    body = {"status": status, "checks": checks, "pending_archives": pending, "quarantined": quarantined}
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)
