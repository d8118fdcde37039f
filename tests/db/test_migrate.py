"""`callmemory migrate` beside a database that is still starting: it waits, up to a deadline, for that
only."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from callmemory.db.migrate import DatabaseNotReady, wait_for_database
from callmemory.settings import Settings
from support.cli import callmemory, cli_env
from support.outage import Outage, through_url
from support.services import create_database, drop_database, redis_server_url


@pytest.fixture
async def empty_database(postgres_server: str) -> AsyncIterator[str]:
    name = f"callmemory_wait_{uuid.uuid4().hex[:12]}"
    yield await create_database(postgres_server, name)
    await drop_database(postgres_server, name)


@pytest.fixture
async def refusing(empty_database: str) -> AsyncIterator[Outage]:
    """The empty database behind a port that refuses connections until the test restores it."""
    async with Outage(empty_database).running() as outage:
        await outage.cut()
        yield outage


def migrate_env(database_url: str) -> dict[str, str]:
    return cli_env(
        Settings(
            _env_file=None,
            database_url=database_url,
            redis_url=redis_server_url(),
            hash_secret=SecretStr("migrate-test-secret-0123456789"),
        )
    )


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def test_migrate_waits_for_a_database_that_refuses_connections_until_it_listens(
    empty_database: str, refusing: Outage
) -> None:
    url = through_url(empty_database, refusing.port)
    migration = asyncio.create_task(callmemory(migrate_env(url), "migrate", "--wait", "30"))
    await asyncio.sleep(2)
    await refusing.restore()

    ran = await migration

    assert ran.status == 0, ran.stderr
    assert await _tables(empty_database) >= {"callers", "calls", "turns", "alembic_version"}


async def test_migrate_gives_up_at_its_deadline_naming_the_database_it_waited_for(
    empty_database: str, refusing: Outage
) -> None:
    url = through_url(empty_database, refusing.port)
    started = time.monotonic()

    ran = await callmemory(migrate_env(url), "migrate", "--wait", "2")

    took = time.monotonic() - started
    assert ran.status == 1
    database = empty_database.rsplit("/", 1)[1]
    assert (
        f"Postgres at 127.0.0.1:{refusing.port}, database {database} did not accept a connection "
        "within 2 s (last: ConnectionRefusedError"
    ) in ran.stderr
    assert 2 <= took < 15
    assert await _tables(empty_database) == set()


async def test_a_missing_database_is_an_error_at_once_not_waited_for(postgres_server: str) -> None:
    missing = postgres_server.rsplit("/", 1)[0] + f"/callmemory_missing_{uuid.uuid4().hex[:12]}"
    started = time.monotonic()

    with pytest.raises(DBAPIError, match="does not exist"):
        await asyncio.to_thread(wait_for_database, missing, 30)

    assert time.monotonic() - started < 5


async def _starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What a Postgres in the middle of its start says to every client: SQLSTATE 57P03."""
    length = struct.unpack("!I", await reader.readexactly(4))[0]
    body = await reader.readexactly(length - 4)
    if body[:4] == struct.pack("!I", 80877103):  # SSLRequest: "no", then the real startup message
        writer.write(b"N")
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        await reader.readexactly(length - 4)
    fields = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0"
    writer.write(b"E" + struct.pack("!I", len(fields) + 4) + fields)
    await writer.drain()
    writer.close()


async def test_a_database_that_answers_it_is_starting_up_is_waited_for() -> None:
    server = await asyncio.start_server(_starting_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseNotReady, match="CannotConnectNowError: the database system is starting"):
            await asyncio.to_thread(
                wait_for_database, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/callmemory", 2
            )
    finally:
        server.close()

    assert time.monotonic() - started >= 2
