"""Liveness says the process runs; readiness says both stores answer."""

from __future__ import annotations

import httpx

from callmemory.settings import Settings
from conftest import running


async def test_healthz_answers_while_the_process_runs(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ok_when_redis_and_postgres_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": True, "postgres": True}


async def test_readyz_is_503_and_names_the_store_that_does_not_answer(settings: Settings) -> None:
    broken = settings.model_copy(update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"})
    async with running(broken) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"redis": True, "postgres": False}
