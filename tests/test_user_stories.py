"""The issue's user stories, end to end over the webhook, on real Redis and Postgres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import purge
from support.llm import FakeLLM
from support.phone import Phone


async def test_second_call_prompt_contains_first_calls_turns(phone: Phone, llm: FakeLLM) -> None:
    await phone.call("My order 4417 has not arrived.")

    call_id, _ = await phone.ring()
    await phone.say(call_id, "Any news?")

    prompt = llm.prompt_text()
    assert "My order 4417 has not arrived." in prompt
    assert "You said: My order 4417 has not arrived." in prompt  # the bot's earlier answer too
    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": "Any news?"}


async def test_returning_caller_is_greeted_with_last_topic(phone: Phone, settings: Settings) -> None:
    _, first = await phone.call("Hi, I need help resetting my password.")
    _, second_greeting = await phone.ring()

    assert first[0] == settings.greeting_new
    assert "I need help resetting my password" in second_greeting
    assert second_greeting.startswith("Welcome back")


async def test_greeting_makes_no_llm_request(phone: Phone, llm: FakeLLM) -> None:
    await phone.call("Where is my parcel?")
    before = len(llm.requests)

    await phone.ring()

    assert len(llm.requests) == before


async def test_caller_is_remembered_after_redis_is_flushed(
    phone: Phone, llm: FakeLLM, redis: Redis, settings: Settings
) -> None:
    await phone.call("My order 4417 has not arrived.")
    assert await purge(redis, settings.redis_prefix) > 0

    call_id, greeting = await phone.ring()
    await phone.say(call_id, "Any news?")

    assert "My order 4417 has not arrived" in greeting
    assert "My order 4417 has not arrived." in llm.prompt_text()


async def test_rehydrated_memory_is_written_back_to_redis(
    phone: Phone, redis: Redis, settings: Settings
) -> None:
    await phone.call("My order 4417 has not arrived.")
    await purge(redis, settings.redis_prefix)

    await phone.ring()

    turns_keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:turns")]
    assert len(turns_keys) == 1
    assert any("4417" in t for t in await redis.lrange(turns_keys[0], 0, -1))


async def test_another_bot_knows_nothing_of_the_caller(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    bot_a = Phone(client, caller="+14155551234", bot="+14155550000")
    bot_b = Phone(client, caller="+14155551234", bot="+14155550001")
    await bot_a.call("My secret word is pineapple.")

    call_id, greeting = await bot_b.ring()
    await bot_b.say(call_id, "What is my secret word?")

    assert "pineapple" not in greeting
    assert "pineapple" not in llm.prompt_text()
    assert not greeting.startswith("Welcome back")


async def test_first_call_of_a_caller_is_archived_with_every_turn(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    call_id, heard = await phone.call("Hello there, I have a question.", "What are your hours?")

    rows = await sql(
        "SELECT t.seq, t.role, t.text FROM turns t JOIN calls c ON c.id = t.call_id "
        "WHERE c.external_id = :id ORDER BY t.seq",
        id=call_id,
    )
    assert [(r.seq, r.role, r.text) for r in rows] == [
        (1, "bot", heard[0]),
        (2, "caller", "Hello there, I have a question."),
        (3, "bot", heard[1]),
        (4, "caller", "What are your hours?"),
        (5, "bot", heard[2]),
    ]


async def test_docs_show_request_and_response_examples_for_every_event_type(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/webhook/call"]["post"]

    request_examples = operation["requestBody"]["content"]["application/json"]["examples"]
    kinds = {example["value"]["type"] for example in request_examples.values()}
    assert {"call.ringing", "call.speech_recognized", "call.hangup"} <= kinds
    response_examples = operation["responses"]["200"]["content"]["application/json"]["examples"]
    assert any("actions" in e["value"] for e in response_examples.values())
    assert any(e["value"].get("status") == "archived" for e in response_examples.values())
    assert {"400", "409", "413", "422", "503"} <= set(operation["responses"])
