"""Fixtures: a real Postgres database and a real Redis key space per run, the LLM faked over HTTP."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from callmemory.core.trust import Disclosure
from callmemory.db.migrate import upgrade
from callmemory.memory.hot.client import HotRedis, redis_client
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import Settings
from support.app import make_settings, purge, running
from support.llm import FakeLLM, LLMServer
from support.outage import Outage
from support.phone import Phone
from support.redis_cluster import LocalCluster, missing_binaries
from support.services import create_database, drop_database, postgres_server_url, redis_server_url
from support.voipbin import (
    ACCESS_KEY,
    AI_ID,
    FETCH_TOKEN,
    MANAGED_BOT,
    WEBHOOK_SECRET,
    FakeVoipbinApi,
    Voipbin,
    VoipbinApiServer,
    fake_voipbin_api,
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's default): twice as many workers as cores, since the tests mostly wait (on
    servers starting, timers, the other process of a test) rather than compute: a serial run kept 2 cores
    at a load of 0.5 to 1. Each worker has its own database, key prefixes, servers and ports (see
    docs/develop.md). PYTEST_XDIST_AUTO_NUM_WORKERS sets the number; `-n 0` runs in this process."""
    if number := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(number)
    return min(2 * (os.cpu_count() or 1), 8)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    return postgres_server_url()


@pytest.fixture(scope="session")
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    """A database of this run's own, migrated to head; dropped at the end."""
    name = f"callmemory_test_{uuid.uuid4().hex[:12]}"
    url = await create_database(postgres_server, name)
    await asyncio.to_thread(upgrade, url)
    yield url
    await drop_database(postgres_server, name)


# The tests of these files run twice: against one Redis server and against a real Redis Cluster (three
# masters on loopback, see support/redis_cluster.py): the core, the call handler, redeliveries, the
# sweeper, the flusher, erasure and VoIPBin, whose keys and scripts must each stay inside one cluster slot.
ON_BOTH_TOPOLOGIES = (
    "core/",
    "calls/",
    "platforms/seed/test_redelivery.py",
    "memory/test_sweeper.py",
    "memory/test_postgres_outage.py",
    "memory/test_quarantine.py",
    "memory/test_erasure.py",
    "platforms/voipbin/",
)
_TESTS = Path(__file__).parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    where = Path(str(metafunc.definition.path)).relative_to(_TESTS).as_posix()
    if "redis_topology" in metafunc.fixturenames and where.startswith(ON_BOTH_TOPOLOGIES):
        metafunc.parametrize("redis_topology", ["single", "cluster"], indirect=True, scope="session")


@pytest.fixture(scope="session")
def redis_topology(request: pytest.FixtureRequest) -> str:
    """`single` (one Redis server), or `cluster` for the files in ON_BOTH_TOPOLOGIES' second run."""
    return str(getattr(request, "param", "single"))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if (why := missing_binaries()) is not None:
        pytest.skip(why)
    with LocalCluster(tmp_path_factory.mktemp("redis-cluster")).running() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_url(redis_topology: str, request: pytest.FixtureRequest) -> str:
    if redis_topology == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    return redis_server_url()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[HotRedis]:
    """A client of the test's Redis, of its topology, for looking at (or tampering with) the keys."""
    client = redis_client(redis_url, max_connections=20, timeout_s=5)
    yield client
    await client.aclose()


@pytest.fixture
async def settings(
    database_url: str, redis_url: str, redis: HotRedis, llm_server: LLMServer, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings of one test: its own Redis prefix; the archive's tables are emptied afterwards."""
    prefix = f"cmtest-{uuid.uuid4().hex[:10]}"
    yield make_settings(
        database_url, redis_url, tmp_path, redis_prefix=prefix, openai_base_url=llm_server.base_url
    )
    await purge(redis, prefix)
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("TRUNCATE callers, calls, turns, summary_jobs, erasures RESTART IDENTITY CASCADE")
        )
    await engine.dispose()


@pytest.fixture(scope="session")
async def llm_server() -> AsyncIterator[LLMServer]:
    async with LLMServer().running() as server:
        yield server


@pytest.fixture
def llm(llm_server: LLMServer) -> FakeLLM:
    """This test's fake LLM: what it answers, how slowly, and every request it got."""
    llm_server.stub = FakeLLM()
    return llm_server.stub


@pytest.fixture
async def client(settings: Settings, llm: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as http:
        yield http


@pytest.fixture
def phone(client: httpx.AsyncClient) -> Phone:
    return Phone(client)


@pytest.fixture
async def postgres(database_url: str) -> AsyncIterator[Outage]:
    """The test database behind a proxy the test can cut (see `support.outage.through`)."""
    async with Outage(database_url).running() as outage:
        yield outage


@pytest.fixture
def sql(database_url: str) -> Callable[[str], Any]:
    """Run one query against the test database and return its rows."""

    async def run(query: str, **params: Any) -> list[Any]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(query), params)).all())
        finally:
            await engine.dispose()

    return run


# -- VoIPBin: its REST API served by a local stub, the app configured with one bot in each mode -------
@pytest.fixture(scope="session")
async def voipbin_api_server() -> AsyncIterator[VoipbinApiServer]:
    async with VoipbinApiServer().running() as server:
        yield server


@pytest.fixture
def voipbin_api(voipbin_api_server: VoipbinApiServer) -> FakeVoipbinApi:
    voipbin_api_server.api = fake_voipbin_api()
    return voipbin_api_server.api


@pytest.fixture
def voipbin_settings(settings: Settings, voipbin_api_server: VoipbinApiServer) -> Settings:
    return settings.model_copy(
        update={
            "voipbin_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "voipbin_fetch_token": SecretStr(FETCH_TOKEN),
            "voipbin_access_key": SecretStr(ACCESS_KEY),
            "voipbin_api_url": voipbin_api_server.base_url,
            "voipbin_bots": {MANAGED_BOT: VoipbinBot(mode="managed_ai", ai_id=AI_ID)},
        }
    )


@pytest.fixture
async def voipbin(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi
) -> AsyncIterator[Voipbin]:
    async with running(voipbin_settings) as http:
        yield Voipbin(http, voipbin_api)


# -- Caller trust: the app under CALLMEMORY_DISCLOSURE=verified -------------------------------------
@pytest.fixture
def guarded_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"disclosure": Disclosure.VERIFIED})


@pytest.fixture
async def guarded(guarded_settings: Settings, llm: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    """The app with CALLMEMORY_DISCLOSURE=verified."""
    async with running(guarded_settings) as http:
        yield http
