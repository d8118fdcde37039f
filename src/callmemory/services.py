"""Builds every long-lived client once (Redis, SQLAlchemy engine, LLM) and the services on top of them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from openai import AsyncOpenAI, DefaultAioHttpClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.responder import OfflineResponder, OpenAIResponder, Responder
from callmemory.conversation.tokens import TokenCounter
from callmemory.core.calls import CallHandler
from callmemory.core.identity import CallerHasher, NumberPolicy
from callmemory.db.deadline import within
from callmemory.db.session import create_engine, create_sessionmaker
from callmemory.memory.archive import Archive
from callmemory.memory.erasure import Eraser
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.client import HotRedis, redis_client
from callmemory.memory.hot.store import HotSettings, HotStore
from callmemory.memory.records import CallerRecords
from callmemory.memory.service import MemoryService
from callmemory.memory.upkeep import Upkeep, UpkeepSettings
from callmemory.observability.metrics import Metrics
from callmemory.observability.tracing import start_tracing
from callmemory.platforms.voipbin import client as voipbin_api
from callmemory.platforms.voipbin.bridge import VoipbinBridge
from callmemory.platforms.voipbin.state import VoipbinState
from callmemory.settings import Settings
from callmemory.summaries.queue import SummaryQueue
from callmemory.summaries.summariser import Summariser
from callmemory.summaries.worker import SummaryWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: HotRedis
    engine: AsyncEngine
    memory: MemoryService
    calls: CallHandler
    prompt: PromptBuilder
    greetings: Greetings
    records: CallerRecords
    eraser: Eraser
    summaries: SummaryWorker | None  # None without an LLM; runs in the background if settings say so
    voipbin: VoipbinBridge
    metrics: Metrics


def _summary_worker(
    settings: Settings,
    llm: AsyncOpenAI | None,
    sessions: async_sessionmaker[AsyncSession],
    hot: HotStore,
    tokens: TokenCounter,
    *,
    metrics: Metrics,
) -> SummaryWorker | None:
    if llm is None:
        return None  # jobs stay queued until the service runs with an LLM
    summariser = Summariser(
        llm,
        tokens,
        model=settings.llm_model,
        timeout_s=settings.summary_timeout_s,
        max_tokens=settings.summary_max_tokens,
        transcript_tokens=settings.summary_transcript_tokens,
        json_mode=settings.summary_json_mode,
    )
    return SummaryWorker(
        SummaryQueue(sessions),
        summariser,
        hot,
        poll_s=settings.summary_poll_s,
        lease_s=settings.summary_lease_s,
        max_attempts=settings.summary_max_attempts,
        retry_base_s=settings.summary_retry_base_s,
        concurrency=settings.summary_concurrency,
        metrics=metrics,
    )


def _responder(settings: Settings, llm: AsyncOpenAI | None, metrics: Metrics) -> Responder:
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
        metrics=metrics,
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("open_services needs DATABASE_URL and REDIS_URL (the CLI starts embedded ones)")
    redis = redis_client(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout_s=settings.redis_timeout_s,
    )
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeout_s=settings.database_timeout_s,
        statement_timeout_s=settings.database_statement_timeout_s,
    )
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
    voipbin_http = (
        voipbin_api.client(
            settings.voipbin_api_url,
            settings.voipbin_access_key.get_secret_value(),
            timeout_s=settings.voipbin_api_timeout_s,
        )
        if settings.voipbin_access_key
        else None
    )
    # One per app (see observability/metrics.py), built here like the clients.
    tracing = start_tracing(settings)
    metrics = Metrics(spans=tracing.spans)
    try:
        hot = HotStore(
            redis,
            HotSettings(
                prefix=settings.redis_prefix,
                recent_turns=2 * settings.recent_exchanges,
                memory_ttl_s=settings.memory_ttl_s,
                call_ttl_s=settings.call_ttl_s,
                call_summaries=settings.recent_call_summaries,
            ),
        )
        sessions = create_sessionmaker(engine)
        tokens = TokenCounter()
        summaries = _summary_worker(settings, llm, sessions, hot, tokens, metrics=metrics)
        memory = MemoryService(
            hot,
            Archive(engine, timeout_s=settings.database_timeout_s),
            CallerHasher(settings.resolved_hash_secret()),
            NumberPolicy(default_region=settings.default_region, strict=settings.strict_phone_numbers),
            recent_turns=2 * settings.recent_exchanges,
            default_bot_number=settings.default_bot_number,
            keep_caller_numbers=settings.store_raw_numbers,
            call_summaries=settings.recent_call_summaries,
            on_archived=summaries.nudge if summaries is not None else None,
            metrics=metrics,
            refusals_max=settings.archive_refusals_max,
            ready_timeout_s=settings.ready_timeout_s,
        )
        prompt = PromptBuilder(settings.system_prompt, tokens, settings.memory_context_tokens)
        greetings = Greetings(new=settings.greeting_new, returning=settings.greeting_returning)
        records = CallerRecords(sessions)
        calls = CallHandler(
            memory,
            _responder(settings, llm, metrics),
            greetings,
            prompt=prompt,
            max_speech_chars=settings.max_speech_chars,
            # A redelivered speech event waits this long for the first delivery's answer.
            duplicate_wait_s=settings.llm_timeout_s + 1.0,
            fallback_line=settings.fallback_line,
        )
        voipbin = VoipbinBridge(
            calls,
            memory,
            VoipbinState(redis, prefix=settings.redis_prefix, ttl_s=settings.call_ttl_s),
            (
                voipbin_api.VoipbinApi(voipbin_http, attempts=settings.voipbin_api_attempts, metrics=metrics)
                if voipbin_http
                else None
            ),
            settings=settings,
            prompt=prompt,
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
            metrics,
        )
        if summaries is not None and settings.summary_worker:
            summaries.start()
        if settings.background_tasks:
            upkeep.start()
        try:
            yield Services(
                settings=settings,
                redis=redis,
                engine=engine,
                memory=memory,
                calls=calls,
                prompt=prompt,
                greetings=greetings,
                records=records,
                eraser=Eraser(hot, records),
                summaries=summaries,
                voipbin=voipbin,
                metrics=metrics,
            )
        finally:
            # Stopped before the clients close: the upkeep's last flush needs both stores.
            if settings.background_tasks:
                await upkeep.stop()
            if summaries is not None:
                await summaries.stop()
    finally:
        if voipbin_http is not None:
            await voipbin_http.aclose()
        if llm is not None:
            await llm.close()
        await redis.aclose()
        try:
            # Closing a connection politely waits for Postgres' answer, which a hanging one never gives.
            await within(settings.database_timeout_s, engine.dispose())
        except TimeoutError:
            log.warning("Postgres did not answer at shutdown; its connections are dropped unclosed")
        await asyncio.to_thread(tracing.close)  # a blocking export of the last spans
