"""The app as the tests run it: its settings, in-process with its lifespan, and helpers on its stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from callmemory.app import create_app
from callmemory.core.trust import Disclosure
from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.keys import Keys
from callmemory.services import open_services
from callmemory.settings import ApiKey, Settings
from support.api import ADMIN_KEY, BOT_A, BOT_A_KEY

TEST_SECRET = "test-hash-secret-0123456789abcdef"


async def purge(redis: HotRedis, prefix: str) -> int:
    """Delete one prefix's keys: how tests "flush" Redis without touching the shared server's others."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    return len(keys)


async def pending_in_redis(redis: HotRedis, prefix: str) -> int:
    """How many calls wait in Redis for the archive, over every bucket of the schedule."""
    return sum([int(await redis.zcard(bucket)) for bucket in Keys(prefix).pending_buckets])


def production_settings(**overrides: Any) -> Settings:
    """Settings that production mode accepts (no stores are reached), changed by `overrides`."""
    values: dict[str, Any] = {
        "environment": "production",
        "hash_secret": SecretStr("x" * 32),
        "database_url": "postgresql://db/x",
        "redis_url": "redis://r",
        "webhook_secret": SecretStr("w" * 32),
        "disclosure": Disclosure.OPEN,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def make_settings(database_url: str, redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "data_dir": data_dir,
        "hash_secret": SecretStr(TEST_SECRET),
        "openai_api_key": SecretStr("sk-test"),
        "llm_timeout_s": 2.0,
        # Summaries run when a test drains the queue, so no background request lands in a count.
        "summary_worker": False,
        "api_keys": [
            ApiKey(key=SecretStr(ADMIN_KEY), name="admin"),
            ApiKey(key=SecretStr(BOT_A_KEY), bot_number=BOT_A, name="bot-a"),
        ],
        **overrides,
    }
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, reached in-process over ASGI."""
    app = create_app(settings)
    async with (
        # asgi-lifespan's default limits are 5 s, which a shutdown with summaries in flight passed on
        # a machine at a load of 9: these bound a hang only.
        LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://callmemory.test"
        ) as client,
    ):
        yield client


async def summarise_queued(settings: Settings) -> int:
    """Run the summary jobs that are due, as the background worker would; returns how many were taken."""
    async with open_services(settings) as services:
        assert services.summaries is not None
        return await services.summaries.drain()
