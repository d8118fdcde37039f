"""Builds every long-lived client once (Redis, SQLAlchemy engine, LLM) and the services on top of them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from openai import AsyncOpenAI, DefaultAioHttpClient
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from callmemory.calls import CallHandler
from callmemory.conversation.greeting import Greetings
from callmemory.conversation.responder import OfflineResponder, OpenAIResponder, Responder
from callmemory.db.session import create_engine, create_sessionmaker
from callmemory.memory.archive import Archive
from callmemory.memory.hot import HotSettings, HotStore
from callmemory.memory.keys import CallerHasher, NumberPolicy
from callmemory.memory.service import MemoryService
from callmemory.settings import Settings
from callmemory.upkeep import Upkeep, UpkeepSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: Redis
    engine: AsyncEngine
    memory: MemoryService
    calls: CallHandler
    upkeep: Upkeep


def _responder(settings: Settings, llm: AsyncOpenAI | None) -> Responder:
    if llm is None:
        log.warning("no OPENAI_API_KEY configured: answering in offline mode")
        return OfflineResponder(settings.offline_line)
    return OpenAIResponder(
        llm,
        model=settings.llm_model,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        timeout_s=settings.llm_timeout_s,
        fallback_line=settings.fallback_line,
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("open_services needs DATABASE_URL and REDIS_URL (the CLI starts embedded ones)")
    # A blocking pool: redis-py's default pool fails at once ("Too many connections") beyond 100
    # concurrent commands, which the load benchmark turned into 503s; this one waits for a connection.
    redis = Redis.from_pool(
        BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_timeout_s,
            decode_responses=True,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
            health_check_interval=30,
        )
    )
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    llm = (
        AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            # A retry would blow the turn's time budget; the caller hears the fallback line instead.
            max_retries=0,
            # aiohttp as the SDK's transport: the default httpx one costs several times the CPU per
            # request, and the LLM call is on every speech turn's path.
            http_client=DefaultAioHttpClient(),
        )
        if settings.openai_api_key
        else None
    )
    try:
        hot = HotStore(
            redis,
            HotSettings(
                prefix=settings.redis_prefix,
                recent_turns=2 * settings.recent_exchanges,
                memory_ttl_s=settings.memory_ttl_s,
                call_ttl_s=settings.call_ttl_s,
            ),
        )
        memory = MemoryService(
            hot,
            Archive(create_sessionmaker(engine)),
            CallerHasher(settings.resolved_hash_secret()),
            NumberPolicy(default_region=settings.default_region, strict=settings.strict_phone_numbers),
            recent_turns=2 * settings.recent_exchanges,
            default_bot_number=settings.default_bot_number,
            keep_caller_numbers=settings.store_raw_numbers,
        )
        calls = CallHandler(
            memory,
            _responder(settings, llm),
            Greetings(new=settings.greeting_new, returning=settings.greeting_returning),
            system_prompt=settings.system_prompt,
            max_speech_chars=settings.max_speech_chars,
            # A redelivered speech event waits this long for the first delivery's answer.
            duplicate_wait_s=settings.llm_timeout_s + 1.0,
            fallback_line=settings.fallback_line,
        )
        upkeep = Upkeep(
            memory,
            UpkeepSettings(
                flush_interval_s=settings.flush_interval_s,
                flush_backoff_max_s=settings.flush_backoff_max_s,
                idle_call_s=settings.idle_call_s,
                sweep_interval_s=settings.sweep_interval_s,
                shutdown_flush_s=settings.shutdown_flush_s,
            ),
        )
        if settings.background_tasks:
            upkeep.start()
        try:
            yield Services(
                settings=settings, redis=redis, engine=engine, memory=memory, calls=calls, upkeep=upkeep
            )
        finally:
            # Stopped before the clients close: its last flush needs both stores.
            if settings.background_tasks:
                await upkeep.stop()
    finally:
        if llm is not None:
            await llm.close()
        await redis.aclose()
        await engine.dispose()
