"""Redis holds each caller's recent turns, capped and expiring, and each live call's state."""

from __future__ import annotations

import asyncio
import json

import httpx
from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.phone import Phone


async def _keys(redis: Redis, settings: Settings) -> list[str]:
    return sorted([k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*")])


async def _turns_key(redis: Redis, settings: Settings) -> str:
    (key,) = [k for k in await _keys(redis, settings) if k.endswith(":turns")]
    return key


async def test_recent_turns_are_capped_at_the_configured_exchanges(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(settings.model_copy(update={"recent_exchanges": 2})) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        for n in range(5):
            await phone.say(call_id, f"Question number {n}.")

    turns = [json.loads(t) for t in await redis.lrange(await _turns_key(redis, settings), 0, -1)]
    assert [t["t"] for t in turns] == [
        "Question number 3.",
        "You said: Question number 3.",
        "Question number 4.",
        "You said: Question number 4.",
    ]


async def test_the_prompt_holds_at_most_the_configured_exchanges(settings: Settings, llm: FakeLLM) -> None:
    async with running(settings.model_copy(update={"recent_exchanges": 2})) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        for n in range(5):
            await phone.say(call_id, f"Question number {n}.")

    chat = [m["content"] for m in llm.requests[-1]["messages"][1:]]
    assert chat == [
        "You said: Question number 2.",
        "Question number 3.",
        "You said: Question number 3.",
        "Question number 4.",
    ]


async def test_caller_memory_expires_after_the_memory_ttl(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(settings.model_copy(update={"memory_ttl_s": 3600})) as client:
        await Phone(client).call("Hello, I am calling about my bill.")

    caller_keys = [k for k in await _keys(redis, settings) if k.endswith((":turns", ":meta"))]
    assert len(caller_keys) == 2
    for key in caller_keys:
        assert 3590 <= await redis.ttl(key) <= 3600


async def test_live_call_state_expires_after_the_call_ttl(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(settings.model_copy(update={"call_ttl_s": 600})) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Still here.")

    call_keys = [k for k in await _keys(redis, settings) if ":call:" in k or ":callref:" in k]
    # state, transcript, its events' answers (a first caller's greeting is kept as its ringing's), and
    # the call-id index
    assert len(call_keys) == 4
    for key in call_keys:
        assert 590 <= await redis.ttl(key) <= 600


async def test_no_raw_phone_number_is_stored_in_redis(phone: Phone, redis: Redis, settings: Settings) -> None:
    call_id, _ = await phone.ring()
    await phone.say(call_id, "Hello there.")

    keys = await _keys(redis, settings)
    assert keys
    for key in keys:
        dump = key + (json.dumps(await redis.hgetall(key)) if await redis.type(key) == "hash" else "")
        if await redis.type(key) == "list":
            dump += json.dumps(await redis.lrange(key, 0, -1))
        for form in ("+14155551234", "14155551234", "4155551234"):
            assert form not in dump, key


async def test_the_same_caller_written_differently_is_one_caller(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await Phone(client, caller="+1 (415) 555-1234").call("Remember the blue folder.")

    _, greeting = await Phone(client, caller="4155551234").ring()

    assert "blue folder" in greeting


async def test_concurrent_calls_from_one_caller_keep_every_turn(
    client: httpx.AsyncClient, llm: FakeLLM, redis: Redis, settings: Settings
) -> None:
    phone = Phone(client)

    async def one_call(n: int) -> None:
        call_id, _ = await phone.ring(f"parallel-{n}")
        await phone.say(call_id, f"Parallel line {n}.")

    await asyncio.gather(*(one_call(n) for n in range(8)))

    logs = [k for k in await _keys(redis, settings) if k.endswith(":log")]
    assert len(logs) == 8
    for key in logs:
        seqs = [json.loads(t)["s"] for t in await redis.lrange(key, 0, -1)]
        assert seqs == [1, 2, 3]
