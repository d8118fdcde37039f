"""The schema exists only through Alembic: migrations are run, reversed and compared to the models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

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


async def _run(url: str, *statements: str) -> list[list[Any]]:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        results: list[list[Any]] = []
        for statement in statements:
            result = await conn.execute(text(statement))
            results.append(list(result.all()) if result.returns_rows else [])
    await engine.dispose()
    return results


_A_CALL_BEFORE_SEARCH = (
    "INSERT INTO callers (id, bot_number, caller_hash) VALUES (1, '+14155550000', 'ab')",
    "INSERT INTO calls (id, platform, external_id, caller_id, started_at, ended_at, summary) "
    "VALUES (1, 'seed', 'c1', 1, now(), now(), 'The caller asked about the dishwasher.')",
    "INSERT INTO turns (call_id, seq, role, text, spoken_at) "
    "VALUES (1, 1, 'caller', 'My dog is Biscuit.', now())",
)


async def _migrated_with_a_call_archived_before_search(url: str) -> None:
    await asyncio.to_thread(upgrade, url, "0004")
    await _run(url, *_A_CALL_BEFORE_SEARCH)
    await asyncio.to_thread(upgrade, url)


async def test_migration_0005_makes_what_was_archived_before_it_searchable(empty_database: str) -> None:
    await _migrated_with_a_call_archived_before_search(empty_database)

    turns, calls = await _run(
        empty_database,
        "SELECT caller_id FROM turns WHERE search @@ 'dog'::tsquery",
        "SELECT id FROM calls WHERE search @@ 'dishwash'::tsquery",
    )
    assert turns == [(1,)]
    assert calls == [(1,)]


async def test_migration_0005_reversed_leaves_the_archive_as_it_was(empty_database: str) -> None:
    await _migrated_with_a_call_archived_before_search(empty_database)

    await asyncio.to_thread(downgrade, empty_database, "0004")

    (turns,) = await _run(empty_database, "SELECT text FROM turns")
    assert turns == [("My dog is Biscuit.",)]
    engine = create_async_engine(empty_database)
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {t: {col["name"] for col in inspect(c).get_columns(t)} for t in ("turns", "calls")}
        )
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    assert "search" not in columns["turns"] | columns["calls"]
    assert "caller_id" not in columns["turns"]
    assert "search_config" not in tables
    # and it runs forward again
    await asyncio.to_thread(upgrade, empty_database)


async def test_migration_0006_gives_what_was_archived_before_it_its_caller_s_search_keys(
    empty_database: str,
) -> None:
    await _migrated_with_a_call_archived_before_search(empty_database)

    turns, calls, elsewhere = await _run(
        empty_database,
        "SELECT text FROM turns WHERE search_keys @> ARRAY[hashtextextended('dog', 1)]",
        "SELECT id FROM calls WHERE search_keys @> ARRAY[hashtextextended('dishwash', 1)]",
        "SELECT count(*) FROM turns WHERE search_keys @> ARRAY[hashtextextended('dog', 2)]",
    )
    assert turns == [("My dog is Biscuit.",)]
    assert calls == [(1,)]
    assert elsewhere == [(0,)]


async def test_migration_0006_reversed_keeps_the_archive_searchable_as_0005_did(empty_database: str) -> None:
    await _migrated_with_a_call_archived_before_search(empty_database)

    await asyncio.to_thread(downgrade, empty_database, "0005")

    (_, turns) = await _run(
        empty_database,
        "INSERT INTO turns (call_id, seq, role, text, spoken_at) VALUES (1, 2, 'bot', 'A fine dog.', now())",
        "SELECT seq FROM turns WHERE search @@ 'dog'::tsquery ORDER BY seq",
    )
    assert turns == [(1,), (2,)]
    engine = create_async_engine(empty_database)
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("turns")})
    await engine.dispose()
    assert "search_keys" not in columns
    await asyncio.to_thread(upgrade, empty_database)


_ARCHIVE_A_CALL_AT_0006 = (
    "SELECT callmemory_archive_call('+14155550000', 'cd', NULL, 'seed', 'c2', now(), now(), NULL, NULL, "
    "'dishwasher', ARRAY[1], ARRAY['caller'], ARRAY['My dishwasher leaks.'], ARRAY[now()], ARRAY[false])"
)


async def test_migration_0007_takes_what_was_archived_before_it_as_unverified(empty_database: str) -> None:
    await _migrated_with_a_call_archived_before_search(empty_database)

    (calls,) = await _run(empty_database, "SELECT external_id, caller_verified FROM calls")

    assert calls == [("c1", False)]


async def test_migration_0007_reversed_archives_as_0004_did(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)

    await asyncio.to_thread(downgrade, empty_database, "0006")

    stored, jobs = await _run(empty_database, _ARCHIVE_A_CALL_AT_0006, "SELECT count(*) FROM summary_jobs")
    assert stored == [("stored",)]
    assert jobs == [(1,)]
    engine = create_async_engine(empty_database)
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("calls")})
    await engine.dispose()
    assert "caller_verified" not in columns
    await asyncio.to_thread(upgrade, empty_database)
