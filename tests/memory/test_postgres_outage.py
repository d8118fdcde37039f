"""Postgres down: callers are still answered from Redis, ended calls wait there and are archived later."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import purge, running
from support.llm import FakeLLM
from support.outage import Outage, OutageThread, through, through_url
from support.phone import Phone
from support.serving import event, free_port, service_env, serving
from support.waiting import eventually

T = TypeVar("T")


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


# -- a Postgres that hangs (a black hole: a partition, a stuck failover) instead of refusing -------------
DEADLINE_S = 0.5
# What a request may take beyond the deadline: Redis round trips and scheduling on a shared machine.
SLACK_S = 0.75


def hanging(settings: Settings, postgres: Outage, **overrides: Any) -> Settings:
    return through(settings, postgres, database_timeout_s=DEADLINE_S, **overrides)


async def timed(request: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await request
    return result, time.monotonic() - started


async def test_hangups_while_postgres_hangs_answer_archive_pending_within_the_deadline_and_are_archived_after(
    settings: Settings, llm: FakeLLM, postgres: Outage, sql: Callable[..., Any]
) -> None:
    quick_flusher = {"flush_interval_s": 0.05, "flush_backoff_max_s": 0.2}
    async with running(hanging(settings, postgres, **quick_flusher)) as http:
        phone = Phone(http)
        calls = []
        for n in range(10):
            call_id, _ = await phone.ring()
            await phone.say(call_id, f"Line {n}.")
            calls.append(call_id)
        await postgres.hang()
        answers = [await timed(phone.hang_up(call_id)) for call_id in calls]
        await postgres.restore()
        restored = time.monotonic()

        async def all_archived() -> bool:
            return len(await sql("SELECT id FROM calls")) == len(calls)

        await eventually(all_archived)
        took = time.monotonic() - restored

    latencies = [seconds for _, seconds in answers]
    print(
        f"\n{len(calls)} hangups while Postgres hung: "
        f"{sum(a == {'status': 'archive_pending'} for a, _ in answers)} acknowledged archive_pending in "
        f"{min(latencies):.2f}-{max(latencies):.2f} s (deadline {DEADLINE_S} s); "
        f"{len(await sql('SELECT id FROM calls'))} archived {took:.2f} s after it came back"
    )
    assert [a for a, _ in answers] == [{"status": "archive_pending"}] * len(calls)
    assert max(latencies) < DEADLINE_S + SLACK_S
    assert len(await sql("SELECT * FROM turns")) == 3 * len(calls)


async def test_a_caller_not_in_redis_is_greeted_without_memory_within_the_deadline_while_postgres_hangs(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis
) -> None:
    async with running(hanging(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await phone.call("My order 4417 never arrived.")
        await purge(redis, settings.redis_prefix)  # their memory must come from Postgres
        await postgres.hang()
        (_, greeting), took = await timed(phone.ring())

    assert greeting == settings.greeting_new
    assert took < DEADLINE_S + SLACK_S


async def test_a_caller_greeted_without_memory_during_a_hang_is_remembered_once_postgres_answers(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis
) -> None:
    async with running(hanging(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await phone.call("My order 4417 never arrived.")
        await purge(redis, settings.redis_prefix)
        await postgres.hang()
        await phone.ring()  # greeted without memory: what Redis gathers now is only part of it
        await postgres.restore()

        _, greeting = await phone.ring()

    assert "My order 4417 never arrived" in greeting


async def test_speech_is_answered_from_redis_without_waiting_while_postgres_hangs(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(hanging(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await postgres.hang()
        answer, took = await timed(phone.say(call_id, "Is my parcel on its way?"))

    assert answer == "You said: Is my parcel on its way?"
    assert took < DEADLINE_S  # nothing on a speech turn's path waits for Postgres


async def test_readyz_answers_degraded_within_a_second_while_postgres_hangs(
    settings: Settings, postgres: Outage
) -> None:
    # The default deadlines: the readiness probe has its own, shorter one.
    async with running(through(settings, postgres, background_tasks=False)) as http:
        await postgres.hang()
        response, took = await timed(http.get("/readyz"))

    assert (response.status_code, response.json()["status"]) == (200, "degraded")
    assert response.json()["checks"] == {"redis": True, "postgres": False}
    assert took < 1.0


async def test_a_hangup_right_after_a_hang_ends_is_archived_at_once(
    settings: Settings, llm: FakeLLM, postgres: Outage, sql: Callable[..., Any]
) -> None:
    async with running(hanging(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await phone.call("First call, archived while all is well.")  # leaves a connection in the pool
        call_id, _ = await phone.ring()
        await postgres.hang()
        await phone.call("A call whose archiving is cut off by the deadline.")
        await postgres.restore()

        hangup = await phone.hang_up(call_id)

    assert hangup == {"status": "archived"}


async def test_sigterm_ends_a_request_stuck_on_postgres_with_the_json_503_and_keeps_its_call(
    settings: Settings, sql: Callable[..., Any], tmp_path: Path, llm: FakeLLM
) -> None:
    assert settings.database_url
    with OutageThread(settings.database_url).running() as postgres:
        # A deadline longer than uvicorn's 10 s of grace: the hangup is still waiting when that runs out.
        env = service_env(
            settings,
            DATABASE_URL=through_url(settings.database_url, postgres.port),
            CALLMEMORY_DATABASE_TIMEOUT_S="60",
        )
        with (
            serving(tmp_path, free_port(), env) as (http, process),
            httpx.Client(base_url=http.base_url, timeout=30) as patient,
            ThreadPoolExecutor(1) as pool,
        ):
            http.post("/webhook/call", json=event("call.ringing", "h-1"))
            http.post("/webhook/call", json=event("call.speech_recognized", "h-1", speech="Keep this."))
            postgres.hang()
            stuck = pool.submit(patient.post, "/webhook/call", json=event("call.hangup", "h-1"))
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            answered = stuck.result(timeout=30)
            postgres.restore()  # for the shutdown's last flush
            process.wait(30)

    assert answered.status_code == 503
    assert answered.headers["content-type"] == "application/json"
    assert answered.json()["error"] == "shutting_down"
    assert process.returncode == 0

    # The cancelled hangup handed its call to the flusher: archived by the shutdown's last pass if
    # Postgres was back by then, else by the next instance's flusher. Either way, once.
    async def archived() -> bool:
        rows = await sql("SELECT text FROM turns WHERE role = 'caller'")
        return [r.text for r in rows] == ["Keep this."]

    async with running(settings):
        await eventually(archived)
