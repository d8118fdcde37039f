"""Builds every long-lived client once (Redis, SQLAlchemy engine, LLM) and the services on top of them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from openai import AsyncOpenAI, DefaultAioHttpClient
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callmemory.calls.handler import CallHandler
from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.responder import OfflineResponder, OpenAIResponder, Responder
from callmemory.conversation.tokens import TokenCounter
from callmemory.core.identity import CallerHasher, NumberPolicy
from callmemory.db.deadline import within
from callmemory.db.session import create_engine, create_sessionmaker
from callmemory.memory.archive import Archive
from callmemory.memory.erasure import Eraser
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.client import HotRedis, redis_client
from callmemory.memory.hot.replicas import ReplicaWait
from callmemory.memory.hot.store import HotSettings, HotStore
from callmemory.memory.records import CallerRecords
from callmemory.memory.search.postgres import PostgresSearch
from callmemory.memory.service import MemoryService
from callmemory.memory.upkeep import Upkeep, UpkeepSettings
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics
from callmemory.observability.tracing import start_tracing
from callmemory.platforms.voipbin import client as voipbin_api
from callmemory.platforms.voipbin.bridge import VoipbinBridge
from callmemory.platforms.voipbin.state import VoipbinState
from callmemory.settings import Settings
from callmemory.summaries.formats import Format, Formats
from callmemory.summaries.gate import Announced, LiveAnswers
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


def _llm_client(api_key: SecretStr, base_url: str | None, timeout_s: float) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=api_key.get_secret_value(),
        base_url=base_url,
        timeout=timeout_s,
        # A live answer's retry would blow the turn's time budget (the caller hears the fallback line
        # instead); a summary's is the worker's to decide, with a changed request.
        max_retries=0,
        # aiohttp as the SDK's transport: the default httpx one costs several times the CPU per
        # request, and the LLM call is on every speech turn's path.
        http_client=DefaultAioHttpClient(),
    )


def _summary_llm(settings: Settings) -> AsyncOpenAI | None:
    """The summaries' own client: their endpoint, key and time limit, apart from the live answers'."""
    key = settings.summary_key
    if key is None:
        return None
    return _llm_client(key, settings.summary_base_url or settings.openai_base_url, settings.summary_timeout_s)


def _live_answers(settings: Settings, redis: HotRedis) -> LiveAnswers | None:
    """Where live answers are noted for summaries to give way to them, when they share an endpoint."""
    if not (settings.summary_yield_to_live and settings.summaries_share_endpoint and settings.openai_api_key):
        return None
    return LiveAnswers(
        redis,
        prefix=settings.redis_prefix,
        answer_timeout_s=settings.llm_timeout_s,
        quiet_s=settings.summary_quiet_s,
    )


def _summary_worker(
    settings: Settings,
    llm: AsyncOpenAI | None,
    sessions: async_sessionmaker[AsyncSession],
    hot: HotStore,
    tokens: TokenCounter,
    *,
    metrics: Metrics,
    live: LiveAnswers | None,
) -> SummaryWorker | None:
    if llm is None:
        return None  # jobs stay queued until the service runs with an LLM
    summariser = Summariser(
        llm,
        tokens,
        model=settings.summary_model or settings.llm_model,
        timeout_s=settings.summary_timeout_s,
        max_tokens=settings.summary_max_tokens,
        transcript_tokens=settings.summary_transcript_tokens,
        formats=Formats(Format.named(settings.summary_format)),
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
        live=live,
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
        max_chars=settings.answer_max_chars,
        metrics=metrics,
    )


async def _search(settings: Settings, engine: AsyncEngine) -> PostgresSearch:
    """The archive's search, its text-search configuration set; the start-up log says what it does."""
    search = PostgresSearch(
        engine,
        config=settings.search_text_config,
        limit=settings.search_results,
        timeout_s=settings.search_timeout_s,
        disclosure=settings.disclosure_policy,
    )
    try:
        await within(settings.database_timeout_s, search.prepare())
    except (SQLAlchemyError, OSError) as exc:
        # Not a reason to refuse to start: the archive may come back, and the search answers () till then.
        log.warning("could not set the search's text-search configuration: %s", describe_error(exc))
    if settings.search_enabled:
        log.info("memory search at each caller turn: %s", search.mode)
    else:
        log.info("memory search at each caller turn: off (the /v1 search still uses %s)", search.mode)
    return search


def _prompt_builder(settings: Settings, tokens: TokenCounter) -> PromptBuilder:
    return PromptBuilder(
        settings.system_prompt,
        tokens,
        settings.memory_context_tokens,
        search_share=settings.search_prompt_share if settings.search_enabled else 0.0,
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:  # noqa: PLR0915 (the one place that wires every client; splitting it would scatter the shutdown order)
    if not settings.database_url or not settings.redis_url:
        raise ValueError("open_services needs DATABASE_URL and REDIS_URL (the CLI starts embedded ones)")
    redis = redis_client(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout_s=settings.redis_timeout_s,
        wait=(
            ReplicaWait(settings.redis_wait_replicas, settings.redis_wait_timeout_s)
            if settings.redis_wait_replicas
            else None
        ),
    )
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeout_s=settings.database_timeout_s,
        statement_timeout_s=settings.database_statement_timeout_s,
    )
    llm = (
        _llm_client(settings.openai_api_key, settings.openai_base_url, settings.llm_timeout_s)
        if settings.openai_api_key
        else None
    )
    summary_llm = _summary_llm(settings)
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
        live = _live_answers(settings, redis)
        summaries = _summary_worker(settings, summary_llm, sessions, hot, tokens, metrics=metrics, live=live)
        responder = _responder(settings, llm, metrics)
        # On a shared endpoint, each live answer is noted for the summaries to give way to.
        announced = Announced(responder, live) if live is not None else None
        search = await _search(settings, engine)
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
            search=search,
            recall=settings.search_enabled,
            disclosure=settings.disclosure_policy,
        )
        prompt = _prompt_builder(settings, tokens)
        greetings = Greetings(new=settings.greeting_new, returning=settings.greeting_returning)
        records = CallerRecords(sessions)
        calls = CallHandler(
            memory,
            announced or responder,
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
            if announced is not None:
                await announced.settle()
    finally:
        if voipbin_http is not None:
            await voipbin_http.aclose()
        for client in (llm, summary_llm):
            if client is not None:
                await client.close()
        await redis.aclose()
        try:
            # Closing a connection politely waits for Postgres' answer, which a hanging one never gives.
            await within(settings.database_timeout_s, engine.dispose())
        except TimeoutError:
            log.warning("Postgres did not answer at shutdown; its connections are dropped unclosed")
        await asyncio.to_thread(tracing.close)  # a blocking export of the last spans
