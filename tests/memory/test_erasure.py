"""Erasing a caller: no row and no key left behind, and nothing written again afterwards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from callmemory.core.events import CallRef, Role
from callmemory.memory.archive import Archive
from callmemory.memory.hot.store import HotSettings, HotStore
from callmemory.memory.types import CallerMemory, CallRecord, Turn, utcnow
from callmemory.services import open_services
from callmemory.settings import Settings
from support.api import Api, caller_path
from support.app import summarise_queued
from support.phone import Phone

CALLER_TABLES = ("callers", "calls", "turns", "summary_jobs")


async def _rows(sql: Callable[..., Any]) -> dict[str, int]:
    return {t: len(await sql(f"SELECT 1 FROM {t}")) for t in CALLER_TABLES}


async def _keys(redis: Redis, settings: Settings) -> list[str]:
    return [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*")]


async def _only_tombstones_left(redis: Redis, settings: Settings) -> None:
    for key in await _keys(redis, settings):
        if ":callref:" in key:
            assert await redis.get(key) == "ended", key  # a call id, marked ended: nothing of the caller
        elif key == f"{settings.redis_prefix}:llm:live":
            continue  # the deployment's answering processes, by random id (summaries/gate.py)
        else:
            assert key.endswith(":erased"), key


async def test_erasure_leaves_no_row_and_no_key_behind_and_returns_a_receipt(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any], redis: Redis
) -> None:
    await phone.call("My account number is 99812.")
    await summarise_queued(settings)
    await phone.call("I moved to Berlin.")  # its summary job is still queued
    live, _ = await phone.ring()
    await phone.say(live, "And one more thing.")

    response = await Api(client).delete(caller_path())

    assert response.status_code == 200, response.text
    deleted = response.json()["deleted"]
    assert deleted | {"redis_keys": 0} == {
        "caller": True,
        "calls": 2,
        "turns": 6,
        "call_summaries": 1,
        "caller_summary": True,
        "profile": True,
        "prepared_greeting": False,  # the second call made the prepared one stale
        "summary_jobs": 1,
        "redis_keys": 0,
        "live_calls": 1,
    }
    assert deleted["redis_keys"] >= 4  # meta, turns, call summaries, the live call's state and log
    assert await _rows(sql) == dict.fromkeys(CALLER_TABLES, 0)
    await _only_tombstones_left(redis, settings)


async def test_erasing_twice_is_harmless(phone: Phone, client: httpx.AsyncClient) -> None:
    await phone.call("My account number is 99812.")
    await Api(client).delete(caller_path())

    again = await Api(client).delete(caller_path())

    assert again.status_code == 200
    assert again.json()["deleted"]["caller"] is False


async def test_a_queued_summary_job_does_not_recreate_an_erased_caller(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any], redis: Redis
) -> None:
    await phone.call("My account number is 99812.")
    await Api(client).delete(caller_path())

    assert await summarise_queued(settings) == 0
    assert await _rows(sql) == dict.fromkeys(CALLER_TABLES, 0)
    await _only_tombstones_left(redis, settings)


async def test_a_summary_job_in_flight_during_erasure_writes_nothing(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any], redis: Redis
) -> None:
    await phone.call("My account number is 99812.")
    async with open_services(settings) as services:
        assert services.summaries is not None
        task = await services.summaries.queue.claim(lease_s=60, max_attempts=5)
        assert task is not None
        result = await services.summaries.summariser.summarise(task)

        await Api(client).delete(caller_path())

        assert await services.summaries.queue.complete(task, result) is None
    assert await _rows(sql) == dict.fromkeys(CALLER_TABLES, 0)
    await _only_tombstones_left(redis, settings)


async def test_late_webhooks_for_a_call_cut_off_by_erasure_store_nothing(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any], redis: Redis
) -> None:
    call_id, _ = await phone.ring()
    await phone.say(call_id, "My account number is 99812.")
    await Api(client).delete(caller_path())

    speech = await phone.send(
        {"type": "call.speech_recognized", "call_id": call_id, "from": phone.caller, "speech": "Hello?"}
    )
    hangup = await phone.hang_up(call_id)

    assert speech.status_code == 409
    assert speech.json()["error"] == "call_already_ended"
    assert hangup == {"status": "already_archived"}
    assert await _rows(sql) == dict.fromkeys(CALLER_TABLES, 0)
    await _only_tombstones_left(redis, settings)


async def test_a_hangup_whose_archiving_began_before_the_erasure_is_not_stored(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    async with open_services(settings) as services:
        caller = services.memory.address("+14155550000", phone.caller)
        started = utcnow() - timedelta(minutes=1)
        record = CallRecord(
            call=CallRef("seed", "late-1"),
            caller=caller,
            started_at=started,
            ended_at=started + timedelta(seconds=30),
            end_reason=None,
            turns=(Turn(seq=1, role=Role.CALLER, text="Late words.", at=started, call_id="late-1"),),
            topic="Late words",
        )
        await Api(client).delete(caller_path())

        assert await Archive(services.engine).archive_call(record) is False
    assert await _rows(sql) == dict.fromkeys(CALLER_TABLES, 0)


async def test_a_read_of_the_archive_from_before_the_erasure_does_not_refill_redis(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    await phone.call("My account number is 99812.")
    async with open_services(settings) as services:
        caller = services.memory.address("+14155550000", phone.caller)
    hot = HotStore(redis, HotSettings(prefix=settings.redis_prefix))
    stale = CallerMemory(caller=caller, call_count=1, summary="Has account 99812.")
    await Api(client).delete(caller_path())

    assert await hot.hydrate(stale) is False
    await _only_tombstones_left(redis, settings)


async def test_a_caller_who_calls_again_after_erasure_starts_afresh(
    phone: Phone, client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    await Api(client).delete(caller_path())

    _, heard = await phone.call("Hello, I am new here.")

    assert heard[0] == settings.greeting_new
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [1]
