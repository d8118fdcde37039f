"""The schema exists only through Alembic: migrations are run, reversed and compared to the models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from callmemory.db.migrate import downgrade, upgrade
from callmemory.db.models import Base
from support.services import create_database, drop_database


@pytest.fixture
async def empty_database(postgres_server: str) -> AsyncIterator[str]:
    name = f"callmemory_mig_{uuid.uuid4().hex[:12]}"
    yield await create_database(postgres_server, name)
    await drop_database(postgres_server, name)


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def test_upgrade_to_head_on_an_empty_database_creates_the_tables(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)

    assert await _tables(empty_database) >= {"callers", "calls", "turns", "alembic_version"}


async def test_downgrade_to_base_removes_every_table(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    await asyncio.to_thread(downgrade, empty_database, "base")

    assert await _tables(empty_database) == {"alembic_version"}


async def test_upgrade_is_repeatable(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    await asyncio.to_thread(upgrade, empty_database)

    engine = create_async_engine(empty_database)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one() == 1
    await engine.dispose()


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    await engine.dispose()

    assert diff == []
