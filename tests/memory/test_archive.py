"""Hangup archives the whole call to Postgres exactly once, then clears its live state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.phone import Phone


async def test_hangup_archives_caller_call_and_turns_in_one_go(phone: Phone, sql: Callable[..., Any]) -> None:
    call_id, heard = await phone.call("My order 4417 has not arrived.")

    (caller,) = await sql("SELECT bot_number, call_count, last_topic, caller_number FROM callers")
    (call,) = await sql("SELECT external_id, platform, turn_count, ended_at FROM calls")
    assert (caller.bot_number, caller.call_count, caller.caller_number) == ("+14155550000", 1, None)
    assert caller.last_topic == "My order 4417 has not arrived"
    assert (call.external_id, call.platform, call.turn_count) == (call_id, "seed", 3)
    assert call.ended_at is not None
    assert len(await sql("SELECT * FROM turns")) == len(heard) + 1


async def test_hangup_clears_the_calls_live_state_but_keeps_caller_memory(
    phone: Phone, redis: Redis, settings: Settings
) -> None:
    _call_id, _ = await phone.call("Hello, checking in on my refund.")

    # The answers given to the call's events (here its greeting) outlive it, for redeliveries after the
    # hangup, and expire with the call TTL; its live state goes with the hangup.
    keys = sorted(
        [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*") if not k.endswith(":ev")]
    )
    assert not [k for k in keys if ":call:" in k]
    assert [k.rsplit(":", 1)[-1] for k in keys if k.startswith(f"{settings.redis_prefix}:{{")] == [
        "meta",
        "turns",
    ]


async def test_a_repeated_hangup_changes_nothing_and_answers_200(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.call("Hello, checking in on my refund.")
    before = await sql("SELECT * FROM turns ORDER BY call_id, seq")

    again = await phone.hang_up(call_id)

    assert again == {"status": "already_archived"}
    assert await sql("SELECT * FROM turns ORDER BY call_id, seq") == before
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [1]


async def test_concurrent_duplicate_hangups_archive_the_call_once(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.ring()
    await phone.say(call_id, "One thing before I go.")

    outcomes = await asyncio.gather(*(phone.hang_up(call_id) for _ in range(5)))

    assert sum(o["status"] == "archived" for o in outcomes) == 1
    assert len(await sql("SELECT * FROM turns")) == 3
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [1]


async def test_a_hangup_for_an_unknown_call_is_acknowledged(phone: Phone, sql: Callable[..., Any]) -> None:
    assert await phone.hang_up("never-rang") == {"status": "unknown_call"}
    assert await sql("SELECT * FROM calls") == []


async def test_archive_down_at_hangup_keeps_the_call_pending_and_a_retry_archives_it(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any], tmp_path: Path
) -> None:
    unreachable = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"}
    )
    async with running(unreachable) as broken:
        phone = Phone(broken)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Please remember my account number is 5521.")
        refused = await phone.send({"type": "call.hangup", "call_id": call_id, "from": phone.caller})
    async with running(settings) as healthy:
        retried = await Phone(healthy).hang_up(call_id)

    assert (refused.status_code, refused.json()) == (200, {"status": "archive_pending"})
    assert retried == {"status": "archived"}
    said = [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller'")]
    assert said == ["Please remember my account number is 5521."]


async def test_calls_of_one_caller_are_archived_separately_and_counted(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    await phone.call("First call about my invoice.")
    await phone.call("Second call about my delivery.")

    (caller,) = await sql("SELECT call_count, last_topic FROM callers")
    assert caller.call_count == 2
    assert caller.last_topic == "Second call about my delivery"
    assert len(await sql("SELECT * FROM calls")) == 2


async def test_raw_numbers_are_kept_only_when_the_setting_allows(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    async with running(settings.model_copy(update={"store_raw_numbers": True})) as client:
        await Phone(client).call("Call me back please.")

    assert [r.caller_number for r in await sql("SELECT caller_number FROM callers")] == ["+14155551234"]
