"""Calls that never hang up (a missed webhook, a crashed instance) are archived by the idle sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.phone import Phone
from support.waiting import eventually


def sweeping(settings: Settings, idle_s: float = 3.0) -> Settings:
    # Long enough that a loaded machine never sweeps a call between its own ring and speech.
    return settings.model_copy(update={"idle_call_s": idle_s, "sweep_interval_s": 0.05})


async def test_a_call_with_no_event_for_the_idle_time_is_archived_with_all_its_turns(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    async with running(sweeping(settings)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Hello, is anybody there?")

        async def archived() -> bool:
            return bool(await sql("SELECT * FROM calls"))

        await eventually(archived)
        late = await phone.send(
            {"type": "call.speech_recognized", "call_id": call_id, "from": phone.caller, "speech": "Hi?"}
        )

    (call,) = await sql("SELECT end_reason, turn_count FROM calls")
    assert (call.end_reason, call.turn_count) == ("idle_timeout", 3)
    assert late.json()["error"] == "call_already_ended"


async def test_idle_calls_are_archived_exactly_once_by_several_instances(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        instances = [await stack.enter_async_context(running(sweeping(settings))) for _ in range(3)]
        for n in range(20):
            phone = Phone(instances[n % 3], caller=f"+1415555{n:04d}")
            call_id, _ = await phone.ring(f"idle-{n}")
            await phone.say(call_id, f"Caller {n} speaking.")

        async def all_archived() -> bool:
            return len(await sql("SELECT * FROM calls")) == 20

        await eventually(all_archived)
        await asyncio.sleep(0.3)  # more passes of every instance: nothing more may happen

    assert len(await sql("SELECT * FROM calls")) == 20
    assert len(await sql("SELECT * FROM turns")) == 60
    assert {r.call_count for r in await sql("SELECT call_count FROM callers")} == {1}


async def test_a_call_locked_by_another_instance_is_left_to_it(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any], redis: Redis
) -> None:
    lock = f"{settings.redis_prefix}:lock:sweep:seed:held"
    await redis.set(lock, "another-instance", px=60_000)
    async with running(sweeping(settings, idle_s=1.0)) as http:
        await Phone(http).ring("held")
        await asyncio.sleep(2.0)  # twice the idle time, many sweeper passes
        while_locked = await sql("SELECT * FROM calls")
        await redis.delete(lock)

        async def archived() -> bool:
            return bool(await sql("SELECT * FROM calls"))

        await eventually(archived)

    assert while_locked == []


async def test_a_call_with_steady_turns_is_not_swept(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    async with running(sweeping(settings, idle_s=2.0)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        for n in range(15):
            await phone.say(call_id, f"Still here, line {n}.")
            await asyncio.sleep(0.1)
        hangup = await phone.hang_up(call_id)

    assert hangup == {"status": "archived"}
    (call,) = await sql("SELECT end_reason FROM calls")
    assert call.end_reason is None
