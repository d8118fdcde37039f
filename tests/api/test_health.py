"""Liveness says the process runs; readiness says both stores answer."""

from __future__ import annotations

import httpx

from callmemory.settings import Settings
from support.app import running


async def test_healthz_answers_while_the_process_runs(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ok_when_redis_and_postgres_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": True, "postgres": True}


async def test_readyz_is_200_degraded_and_names_postgres_when_only_postgres_is_down(
    settings: Settings,
) -> None:
    broken = settings.model_copy(update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"})
    async with running(broken) as client:
        response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"] == {"redis": True, "postgres": False}


async def test_readyz_is_503_when_redis_is_down(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.5})
    async with running(broken) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"redis": False, "postgres": True},
        "pending_archives": None,
        "quarantined": None,
    }
