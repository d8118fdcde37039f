"""Postgres down: callers are still answered from Redis, ended calls wait there and are archived later."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from conftest import purge, running
from support.llm import FakeLLM
from support.outage import Outage, through
from support.phone import Phone
from support.waiting import eventually


async def test_callers_are_answered_while_postgres_is_down_and_their_call_is_archived_once_it_is_back(
    settings: Settings, llm: FakeLLM, postgres: Outage, sql: Callable[..., Any]
) -> None:
    async with running(through(settings, postgres, flush_interval_s=0.05, flush_backoff_max_s=0.2)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await postgres.cut()
        answer = await phone.say(call_id, "My card was charged twice.")
        hangup = await phone.hang_up(call_id)
        await asyncio.sleep(0.5)  # several flusher passes fail meanwhile
        still_pending = await sql("SELECT * FROM calls")

        await postgres.restore()

        async def archived() -> bool:
            return len(await sql("SELECT * FROM turns")) == 3

        await eventually(archived)
        ready = (await http.get("/readyz")).json()

    assert answer == "You said: My card was charged twice."
    assert hangup == {"status": "archive_pending"}
    assert still_pending == []
    assert ready["pending_archives"] == 0
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [1]


async def test_readyz_reports_degraded_with_the_pending_count_while_postgres_is_down(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await postgres.cut()
        await phone.hang_up(call_id)
        response = await http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"redis": True, "postgres": False},
        "pending_archives": 1,
        "quarantined": 0,
    }


async def test_a_returning_caller_is_greeted_from_redis_memory_while_postgres_is_down(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(through(settings, postgres)) as http:
        phone = Phone(http)
        await phone.call("My order 4417 never arrived.")
        await postgres.cut()
        _, greeting = await phone.ring()

    assert "My order 4417 never arrived" in greeting


async def test_shutdown_archives_calls_still_pending(
    settings: Settings, llm: FakeLLM, postgres: Outage, sql: Callable[..., Any]
) -> None:
    # No flusher pass runs during the test's life: only the shutdown's last flush can archive the call.
    slow_flusher = through(settings, postgres, flush_interval_s=3600)
    async with running(slow_flusher) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await postgres.cut()
        assert await phone.hang_up(call_id) == {"status": "archive_pending"}
        await postgres.restore()

    assert len(await sql("SELECT * FROM calls")) == 1


async def test_a_call_waiting_for_the_archive_does_not_expire_from_redis(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis
) -> None:
    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Please keep this.")
        await postgres.cut()
        await phone.hang_up(call_id)

    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:call:*")]
    call_keys = [k for k in keys if not k.endswith(":ev")]
    assert len(call_keys) == 2  # the state and the transcript
    assert [await redis.ttl(k) for k in call_keys] == [-1, -1]


async def test_a_hangup_right_after_postgres_comes_back_is_archived_at_once(
    settings: Settings, llm: FakeLLM, postgres: Outage, sql: Callable[..., Any]
) -> None:
    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await phone.call("First call, archived while all is well.")  # leaves a connection in the pool
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Second call.")
        await postgres.cut()  # the pooled connection dies with it
        await postgres.restore()

        hangup = await phone.hang_up(call_id)

    assert hangup == {"status": "archived"}
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [2]


async def test_a_callers_memory_is_read_from_postgres_right_after_it_comes_back(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis
) -> None:
    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await phone.call("My order 4417 never arrived.")  # leaves a connection in the pool
        await purge(redis, settings.redis_prefix)  # so the memory must come from Postgres
        await postgres.cut()
        await postgres.restore()

        _, greeting = await phone.ring()

    assert "My order 4417 never arrived" in greeting


async def test_a_caller_answered_without_memory_during_an_outage_is_remembered_whole_once_it_is_back(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis
) -> None:
    # No flusher: the outage's call stays pending in Redis, so its turns exist nowhere else yet.
    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await phone.call("My order 4417 never arrived.")
        await purge(redis, settings.redis_prefix)  # the hot copy expired
        await postgres.cut()
        await phone.call("I also need a new charger.")  # answered without the archived memory
        await postgres.restore()

        call_id, greeting = await phone.ring()
        await phone.say(call_id, "Any news?")

    assert "My order 4417 never arrived" in greeting
    prompt = llm.prompt_text()
    assert "My order 4417 never arrived." in prompt  # from the archive
    assert "I also need a new charger." in prompt  # from Redis: its call is not archived yet


async def test_a_call_archived_after_the_outage_is_remembered_once_not_twice(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis, sql: Callable[..., Any]
) -> None:
    async with running(through(settings, postgres, flush_interval_s=0.05, flush_backoff_max_s=0.2)) as http:
        phone = Phone(http)
        await phone.call("My order 4417 never arrived.")
        await purge(redis, settings.redis_prefix)
        await postgres.cut()
        await phone.call("I also need a new charger.")
        await postgres.restore()

        async def archived() -> bool:
            return len(await sql("SELECT * FROM calls")) == 2

        await eventually(archived)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Any news?")

    prompt = llm.prompt_text()
    assert prompt.count("Caller: I also need a new charger.") == 1
    assert "My order 4417 never arrived." in prompt
