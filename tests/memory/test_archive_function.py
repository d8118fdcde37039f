"""A finished call is archived by one statement, callmemory_archive_call(): what it stores, and when not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.db.session import create_engine
from callmemory.memory.archive import Archive
from callmemory.memory.types import CallRecord, Turn
from callmemory.settings import Settings
from support.waiting import eventually

CALLER = CallerId(bot_number="+14155550000", caller_hash="ab" * 32)
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CALLER_TABLES = ("callers", "calls", "turns", "summary_jobs")
NOTHING: dict[str, list[Any]] = {t: [] for t in CALLER_TABLES}
LINES = ((Role.BOT, "Hello, how can I help?"), (Role.CALLER, "My parcel is late."), (Role.BOT, "Let me see."))


def finished_call(
    call_id: str, started_at: datetime = START, *, topic: str | None = "My parcel is late", **more: Any
) -> CallRecord:
    turns = tuple(
        Turn(
            seq=n,
            role=role,
            text=said,
            at=started_at + timedelta(seconds=10 * n),
            call_id=call_id,
            fallback=n == len(LINES),
        )
        for n, (role, said) in enumerate(LINES, start=1)
    )
    return CallRecord(
        call=CallRef("seed", call_id),
        caller=CALLER,
        started_at=started_at,
        ended_at=started_at + timedelta(minutes=2),
        end_reason="hangup",
        turns=turns,
        topic=topic,
        **more,
    )


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The service's engine on the test database (the `settings` fixture empties the tables after)."""
    engine = create_engine(settings.database_url or "")
    yield engine
    await engine.dispose()


async def execute(engine: AsyncEngine, statement: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement), params)


async def erase_at(engine: AsyncEngine, erased_at: datetime) -> None:
    """The tombstone an erasure of CALLER leaves."""
    await execute(
        engine,
        "INSERT INTO erasures (bot_number, caller_hash, erased_at) VALUES (:b, :h, :at)",
        b=CALLER.bot_number,
        h=CALLER.caller_hash,
        at=erased_at,
    )


async def everything(sql: Callable[..., Any]) -> dict[str, list[Any]]:
    return {t: await sql(f"SELECT * FROM {t} ORDER BY 1, 2") for t in CALLER_TABLES}


async def test_archiving_a_call_sends_one_statement_and_no_begin_commit_or_ping(engine: AsyncEngine) -> None:
    statements: list[str] = []
    # What asyncpg sends outside prepared statements: BEGIN, COMMIT, ROLLBACK and the pool's pings.
    simple_queries: list[str] = []

    @event.listens_for(engine.sync_engine, "connect")
    def log_simple_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda q: simple_queries.append(q.query))

    archive = Archive(engine)
    await archive.archive_call(finished_call("warm-up"))  # connecting runs the dialect's own queries
    await asyncio.sleep(0)  # asyncpg hands logged queries to the loggers on the loop's next pass
    simple_queries.clear()
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    stored = await archive.archive_call(finished_call("c-1", START + timedelta(hours=1)))
    await asyncio.sleep(0)

    assert stored is True
    assert len(statements) == 1
    assert statements[0].startswith("SELECT callmemory_archive_call(")
    assert simple_queries == []


async def test_a_stored_call_has_its_turns_in_order_a_summary_job_and_counts_for_its_caller(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    record = finished_call("c-1", caller_number="+14155551234", summary="Parcel late; driver rebooked.")

    stored = await Archive(engine).archive_call(record)

    (caller,) = await sql("SELECT * FROM callers")
    (call,) = await sql("SELECT * FROM calls")
    turns = await sql("SELECT * FROM turns ORDER BY seq")
    jobs = await sql("SELECT * FROM summary_jobs")
    assert stored is True
    assert (caller.bot_number, caller.caller_hash, caller.caller_number) == (
        CALLER.bot_number,
        CALLER.caller_hash,
        "+14155551234",
    )
    assert (caller.first_seen_at, caller.last_seen_at) == (record.started_at, record.ended_at)
    assert (caller.call_count, caller.last_topic) == (1, "My parcel is late")
    assert (call.caller_id, call.platform, call.external_id, call.turn_count) == (caller.id, "seed", "c-1", 3)
    assert (call.started_at, call.ended_at, call.end_reason, call.summary) == (
        record.started_at,
        record.ended_at,
        "hangup",
        "Parcel late; driver rebooked.",
    )
    assert [(t.call_id, t.seq, t.role, t.text, t.spoken_at, t.fallback) for t in turns] == [
        (call.id, t.seq, str(t.role), t.text, t.at, t.fallback) for t in record.turns
    ]
    assert [(j.call_id, j.attempts) for j in jobs] == [(call.id, 0)]


async def test_a_call_without_turns_is_stored_with_none(engine: AsyncEngine, sql: Callable[..., Any]) -> None:
    record = replace(finished_call("silent"), turns=())

    stored = await Archive(engine).archive_call(record)

    assert stored is True
    assert [c.turn_count for c in await sql("SELECT turn_count FROM calls")] == [0]
    assert await sql("SELECT * FROM turns") == []


async def test_archiving_a_call_again_returns_false_and_doubles_nothing(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    archive = Archive(engine)
    record = finished_call("c-1")
    first = await archive.archive_call(record)
    before = await everything(sql)

    again = await archive.archive_call(record)

    assert (first, again) == (True, False)
    assert await everything(sql) == before


async def test_a_call_of_a_caller_erased_after_it_began_is_not_stored_and_leaves_no_caller_row(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    await erase_at(engine, START + timedelta(minutes=1))

    stored = await Archive(engine).archive_call(finished_call("c-1"))

    assert stored is False
    assert await everything(sql) == NOTHING


async def test_a_late_call_from_before_an_erasure_leaves_the_caller_who_called_again_untouched(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    archive = Archive(engine)
    await erase_at(engine, START + timedelta(minutes=1))
    assert await archive.archive_call(finished_call("after", START + timedelta(minutes=5)))
    before = await everything(sql)
    # Began before the erasure, ended last and carries a number: its upsert would change the caller row.
    late = replace(finished_call("before", caller_number="+14155551234"), ended_at=START + timedelta(hours=1))

    stored = await archive.archive_call(late)

    assert stored is False
    assert await everything(sql) == before


async def test_an_erasure_that_commits_while_the_archive_waits_for_the_caller_row_leaves_nothing(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    archive = Archive(engine)
    await archive.archive_call(finished_call("earlier"))
    caller = {"b": CALLER.bot_number, "h": CALLER.caller_hash}

    async def archive_waits_for_the_lock() -> bool:
        waiting = await sql(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'SELECT callmemory_archive_call(%'"
        )
        return bool(waiting)

    # What Eraser does: lock the caller row, delete it, leave a tombstone, in one transaction.
    async with engine.connect() as eraser, eraser.begin():
        await eraser.execute(
            text("SELECT id FROM callers WHERE bot_number = :b AND caller_hash = :h FOR UPDATE"), caller
        )
        archiving = asyncio.create_task(
            archive.archive_call(finished_call("late", START + timedelta(hours=1)))
        )
        await eventually(archive_waits_for_the_lock)
        await eraser.execute(text("DELETE FROM callers WHERE bot_number = :b AND caller_hash = :h"), caller)
        await eraser.execute(
            text("INSERT INTO erasures (bot_number, caller_hash, erased_at) VALUES (:b, :h, :at)"),
            {**caller, "at": START + timedelta(hours=2)},
        )
    stored = await archiving

    assert stored is False
    assert await everything(sql) == NOTHING


async def test_an_older_call_archived_late_counts_but_keeps_the_newer_calls_topic_and_greeting(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    archive = Archive(engine)
    await archive.archive_call(finished_call("newer", START + timedelta(days=1), topic="My new router"))
    await execute(engine, "UPDATE callers SET next_greeting = 'How is the new router?'")

    stored = await archive.archive_call(finished_call("older", START, topic="My parcel is late"))

    (caller,) = await sql("SELECT call_count, last_topic, next_greeting FROM callers")
    assert stored is True
    assert (caller.call_count, caller.last_topic, caller.next_greeting) == (
        2,
        "My new router",
        "How is the new router?",
    )


async def test_a_newer_call_without_a_topic_keeps_the_last_one_and_drops_the_prepared_greeting(
    engine: AsyncEngine, sql: Callable[..., Any]
) -> None:
    archive = Archive(engine)
    await archive.archive_call(finished_call("older", START, topic="My parcel is late"))
    await execute(engine, "UPDATE callers SET next_greeting = 'Did the parcel arrive?'")

    stored = await archive.archive_call(finished_call("newer", START + timedelta(days=1), topic=None))

    (caller,) = await sql("SELECT call_count, last_topic, next_greeting FROM callers")
    assert stored is True
    assert (caller.call_count, caller.last_topic, caller.next_greeting) == (2, "My parcel is late", None)
