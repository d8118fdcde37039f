"""Which real Postgres and Redis the tests use, and a database of each run's own.

Order of preference: `TEST_POSTGRES_URL` / `TEST_REDIS_URL`; the servers on 127.0.0.1 when they answer
(shared with CI, so every run works in its own database and its own key prefix); embedded servers from
pip packages otherwise, or always with `TEST_SERVICES=embedded`.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from callmemory.db.migrate import upgrade
from callmemory.devtools.embedded import EmbeddedPostgres, EmbeddedRedis
from callmemory.settings import Settings

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _embedded_only() -> bool:
    return os.environ.get("TEST_SERVICES", "").lower() == "embedded"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@functools.cache
def _embedded_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="callmemory-test-"))


@functools.cache
def postgres_server_url() -> str:
    """A URL of a server's maintenance database, from which each run creates its own."""
    if url := os.environ.get("TEST_POSTGRES_URL"):
        return url
    if not _embedded_only() and _answers("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    embedded = EmbeddedPostgres(_embedded_root() / "postgres")
    atexit.register(embedded.stop)
    return embedded.start(database="postgres")


@functools.cache
def redis_server_url() -> str:
    if url := os.environ.get("TEST_REDIS_URL"):
        return url
    if not _embedded_only() and _answers("127.0.0.1", 6379):
        return LOCAL_REDIS
    embedded = EmbeddedRedis(_embedded_root() / "redis")
    atexit.register(embedded.stop)
    return embedded.start()


def _connect_args(server_url: str) -> dict[str, object]:
    url = make_url(server_url)
    return {
        "host": url.query.get("host") or url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


async def create_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(**_connect_args(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(**_connect_args(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_stores(label: str) -> AsyncIterator[tuple[str, str, str]]:
    """(database URL, Redis URL, key prefix): a migrated database and a key prefix of their own on the
    servers the tests use, removed afterwards. For the scripts in bench/."""
    server = postgres_server_url()
    name = f"callmemory_{label}_{uuid.uuid4().hex[:10]}"
    url = await create_database(server, name)
    prefix = f"cm{label}-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(redis_server_url(), decode_responses=True)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url, redis_server_url(), prefix
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await drop_database(server, name)


def scratch_settings(stores: tuple[str, str, str], **overrides: Any) -> Settings:
    """Settings for a bench script on its `scratch_stores`: no .env file, a fixed hash secret."""
    url, redis_url, prefix = stores
    return Settings(
        _env_file=None,
        environment="test",
        database_url=url,
        redis_url=redis_url,
        redis_prefix=prefix,
        hash_secret=SecretStr("bench-secret-0123456789abcdef"),
        **overrides,
    )
