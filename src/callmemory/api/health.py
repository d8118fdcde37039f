"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from callmemory.api.deps import MemoryDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Redis and Postgres answer",
    responses={
        503: {
            "description": "A store does not answer",
            "content": {
                "application/json": {
                    "example": {"status": "unavailable", "checks": {"redis": True, "postgres": False}}
                }
            },
        }
    },
)
async def readyz(memory: MemoryDep) -> Any:
    checks = await memory.ready()
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
