"""Redis flushed or restarted mid-traffic: calls go on, callers are rehydrated, nothing answers 500.

What the bot does with a live call whose state Redis lost: a speech event that names the bot (`to`, or
a configured default bot number) reopens the call at that turn, with the caller's memory rehydrated from
Postgres; the turns before the loss are gone with Redis (run it with persistence for that). A speech
event that cannot name the bot is refused with 409 call_not_started, and a hangup of a lost call is
acknowledged as unknown_call.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from callmemory.calls.handler import CallHandler
from callmemory.conversation.responder import Answer
from callmemory.core.events import CallerSpoke, CallRef
from callmemory.core.identity import CallerId
from callmemory.devtools.embedded import EmbeddedRedis
from callmemory.memory.greeting import Greetings
from callmemory.memory.live import CallBegun
from callmemory.memory.service import MemoryService
from callmemory.memory.types import CallerMemory, EventAnswer
from callmemory.settings import Settings
from support.app import purge, running
from support.llm import FakeLLM
from support.phone import Phone, said
from support.waiting import eventually

CALLER = "+14155551234"
BOT = "+14155550000"


async def archived_turns(sql: Callable[..., Any], call_id: str) -> list[str]:
    rows = await sql(
        "SELECT t.text FROM turns t JOIN calls c ON c.id = t.call_id WHERE c.external_id = :id ORDER BY seq",
        id=call_id,
    )
    return [r.text for r in rows]


async def refused_then_answered(phone: Phone, event: dict[str, Any]) -> str:
    """`event` sent twice, as a platform redelivers after a 503: the first is refused as a store
    failure (to be retried, not a final 4xx); what the second is answered."""
    first = await phone.send(event)
    assert (first.status_code, first.json()["error"]) == (503, "store_unavailable"), first.text
    retried = await phone.send(event)
    assert retried.status_code == 200, retried.text
    return said(retried.json())


def speech(call_id: str, text: str, *, to: str | None = BOT) -> dict[str, Any]:
    event = {"type": "call.speech_recognized", "call_id": call_id, "from": CALLER, "speech": text}
    return {**event, "to": to} if to else event


async def test_a_call_whose_state_was_flushed_is_reopened_with_the_callers_archived_memory(
    phone: Phone, llm: FakeLLM, redis: Redis, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My order 4417 never arrived.")
    call_id, _ = await phone.ring()
    await purge(redis, settings.redis_prefix)

    response = await phone.send(speech(call_id, "Any news on it?"))
    hangup = await phone.hang_up(call_id)

    assert said(response.json()) == "You said: Any news on it?"
    assert "My order 4417 never arrived." in llm.prompt_text()
    assert hangup == {"status": "archived"}
    assert await archived_turns(sql, call_id) == ["Any news on it?", "You said: Any news on it?"]


async def test_a_lost_call_whose_event_does_not_name_the_bot_is_refused_with_409(
    phone: Phone, redis: Redis, settings: Settings
) -> None:
    call_id, _ = await phone.ring()
    await purge(redis, settings.redis_prefix)

    response = await phone.send(speech(call_id, "Hello?", to=None))

    assert response.status_code == 409
    assert response.json()["error"] == "call_not_started"


async def test_a_hangup_of_a_lost_call_is_acknowledged(
    phone: Phone, redis: Redis, settings: Settings
) -> None:
    call_id, _ = await phone.ring()
    await purge(redis, settings.redis_prefix)

    assert await phone.hang_up(call_id) == {"status": "unknown_call"}


async def test_calls_go_on_through_a_redis_restart_that_lost_everything(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any], tmp_path: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    url = await asyncio.to_thread(server.start)
    statuses: list[int] = []
    try:
        async with running(settings.model_copy(update={"redis_url": url, "redis_timeout_s": 0.5})) as http:
            phone = Phone(http)
            await phone.call("I want to cancel my gym membership.")
            stop = asyncio.Event()

            async def traffic(n: int) -> None:
                call_id = f"busy-{n}"
                ring = {"type": "call.ringing", "call_id": call_id, "from": CALLER, "to": BOT}
                statuses.append((await phone.send(ring)).status_code)
                turn = 0
                while not stop.is_set():
                    statuses.append((await phone.send(speech(call_id, f"line {turn}"))).status_code)
                    turn += 1
                    await asyncio.sleep(0.02)

            busy = [asyncio.create_task(traffic(n)) for n in range(5)]
            await asyncio.sleep(0.2)
            await asyncio.to_thread(server.stop)
            shutil.rmtree(tmp_path / "redis" / "appendonlydir", ignore_errors=True)

            # Down until a caller has met the outage, not for a fixed 0.2 s: on a loaded machine the
            # callers' requests are slow enough that none had fallen into so short a window.
            async def refused() -> bool:
                return 503 in statuses

            await eventually(refused)
            await asyncio.to_thread(server.start)
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*busy)

            after = await phone.send(speech("busy-0", "Are you still there?"))
            _, greeting = await phone.ring()
    finally:
        await asyncio.to_thread(server.stop)

    assert 500 not in statuses
    assert set(statuses) == {200, 503}  # 503 while Redis was down: the outage was real
    assert statuses[-1] == 200
    assert after.status_code == 200
    assert "cancel my gym membership" in greeting  # rehydrated from Postgres


async def test_calls_go_on_after_redis_forgot_its_scripts(
    phone: Phone, redis: Redis, sql: Callable[..., Any]
) -> None:
    await phone.call("My parcel 5521 is lost.")
    # What a restarted Redis that kept its data (AOF) has forgotten: the scripts are sent by hash alone.
    await redis.script_flush()

    call_id, heard = await phone.call("Any news on it?")

    assert "My parcel 5521 is lost" in heard[0]
    assert heard[1] == "You said: Any news on it?"
    archived = await sql("SELECT turn_count FROM calls WHERE external_id = :c", c=call_id)
    assert [r.turn_count for r in archived] == [3]
    assert await redis.keys(f"*:call:seed:{call_id}*") == []


async def test_a_ringing_whose_new_state_is_lost_before_the_greeting_answers_503_and_its_retry_greets(
    phone: Phone, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a Redis failover can: the call's state, written and acknowledged, is gone a moment later.
    picked = MemoryService.greeting_for

    async def lost_meanwhile(self: MemoryService, memory: CallerMemory, greetings: Greetings) -> str:
        monkeypatch.setattr(MemoryService, "greeting_for", picked)
        await purge(redis, settings.redis_prefix)
        return await picked(self, memory, greetings)

    monkeypatch.setattr(MemoryService, "greeting_for", lost_meanwhile)
    ringing = {"type": "call.ringing", "call_id": "lost-1", "from": CALLER, "to": BOT}

    assert await refused_then_answered(phone, ringing) == "Hello! How can I help you today?"


async def test_a_turn_whose_reopened_state_is_lost_before_it_is_recorded_answers_503_and_its_retry_is_heard(
    phone: Phone, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ringing never reached us, so the turn reopens the call; then, as a Redis failover can, the
    # state it wrote and had acknowledged is gone before the turn is recorded, and so is the state of
    # the turn's second try at reopening it.
    reopen = MemoryService.begin_call
    losses = iter(range(2))

    async def lost_meanwhile(
        self: MemoryService, call: CallRef, caller_number: str, bot_number: str | None
    ) -> CallBegun:
        begun = await reopen(self, call, caller_number, bot_number)
        if next(losses, None) is not None:
            await purge(redis, settings.redis_prefix)
        return begun

    monkeypatch.setattr(MemoryService, "begin_call", lost_meanwhile)
    turn = {
        "type": "call.speech_recognized",
        "call_id": "lost-2",
        "from": CALLER,
        "to": BOT,
        "speech": "Is anyone there?",
        "event_id": "ev-1",
    }

    assert await refused_then_answered(phone, turn) == "You said: Is anyone there?"


async def test_a_turn_whose_state_is_lost_while_the_llm_answers_answers_503_and_its_retry_is_archived_once(
    phone: Phone, redis: Redis, settings: Settings, sql: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The turn is recorded and the LLM asked; then, as a Redis failover can, the call's state (and the
    # turn in it) is gone before the answer is recorded.
    ask = CallHandler._ask

    async def lost_meanwhile(self: CallHandler, call: CallRef, memory: CallerMemory) -> Answer:
        monkeypatch.setattr(CallHandler, "_ask", ask)
        answer = await ask(self, call, memory)
        await purge(redis, settings.redis_prefix)
        return answer

    call_id, _ = await phone.ring()
    monkeypatch.setattr(CallHandler, "_ask", lost_meanwhile)
    turn = {**speech(call_id, "Where is my parcel?"), "event_id": "ev-1"}

    answered = await refused_then_answered(phone, turn)
    hangup = await phone.hang_up(call_id)

    assert answered == "You said: Where is my parcel?"
    assert hangup == {"status": "archived"}
    assert await archived_turns(sql, call_id) == ["Where is my parcel?", "You said: Where is my parcel?"]


async def test_a_redelivery_waiting_for_an_answer_whose_state_is_lost_answers_503_and_its_retry_is_heard(
    phone: Phone, llm: FakeLLM, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first delivery is with the LLM; its redelivery waits for that answer; then the call's state is
    # lost, as a Redis failover can lose it, and neither will ever find the answer it waits for.
    wait = CallHandler._await_answer

    async def lost_meanwhile(self: CallHandler, event: CallerSpoke, caller: CallerId) -> EventAnswer:
        await purge(redis, settings.redis_prefix)
        return await wait(self, event, caller)

    ask = CallHandler._ask
    asked = asyncio.Event()

    async def asking(self: CallHandler, call: CallRef, memory: CallerMemory) -> Answer:
        asked.set()  # the first delivery's turn is recorded
        return await ask(self, call, memory)

    call_id, _ = await phone.ring()
    monkeypatch.setattr(CallHandler, "_await_answer", lost_meanwhile)
    monkeypatch.setattr(CallHandler, "_ask", asking)
    llm.delay_s = 1.0
    turn = {**speech(call_id, "Where is my parcel?"), "event_id": "ev-1"}

    first = asyncio.create_task(phone.send(turn))
    await asked.wait()
    redelivered = await phone.send(turn)
    llm.delay_s = 0.0
    retried = await phone.send(turn)

    assert (await first).status_code == 503
    assert redelivered.status_code == 503
    assert redelivered.json()["error"] == "store_unavailable"
    assert retried.status_code == 200
    assert said(retried.json()) == "You said: Where is my parcel?"
