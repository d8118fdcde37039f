"""Hot memory and the archive under CALLMEMORY_DISCLOSURE=verified: a call kept apart writes nothing into
the caller's hot memory, and a rehydration from the archive reads verified calls alone."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import purge
from support.llm import FakeLLM
from support.phone import Phone
from support.trust import FACT, GENUINE, SPOOF_WORD, SPOOFED, genuine_then_spoofed


@pytest.fixture
def phone(guarded: httpx.AsyncClient) -> Phone:
    return Phone(guarded, caller=GENUINE)


async def _hot_memory(redis: Redis, settings: Settings) -> dict[str, object]:
    """Every key of callers' memory in Redis (not of their calls), with its value."""
    found: dict[str, object] = {}
    async for key in redis.scan_iter(match=f"{settings.redis_prefix}:{{*}}:*"):
        if str(key).endswith((":meta", ":turns", ":sums")):
            is_hash = await redis.type(key) == "hash"
            found[str(key)] = await redis.hgetall(key) if is_hash else await redis.lrange(key, 0, -1)
    return found


async def test_a_call_kept_apart_writes_nothing_into_the_caller_s_hot_memory(
    phone: Phone, redis: Redis, guarded_settings: Settings
) -> None:
    await phone.call(FACT, verified=True)
    before = await _hot_memory(redis, guarded_settings)

    await phone.call(SPOOFED)

    assert await _hot_memory(redis, guarded_settings) == before


async def test_a_rehydration_reads_the_verified_calls_alone(
    phone: Phone, redis: Redis, guarded_settings: Settings, llm: FakeLLM
) -> None:
    await genuine_then_spoofed(phone)
    await purge(redis, guarded_settings.redis_prefix)

    call_id, greeting = await phone.ring(verified=True)
    await phone.say(call_id, "The refund to my account, and my parcel?")

    assert "88213" in greeting
    assert FACT in llm.prompt_text()
    assert SPOOF_WORD not in greeting + llm.prompt_text()


async def test_a_spoof_while_the_memory_is_cold_leaves_it_to_be_rehydrated(
    phone: Phone, redis: Redis, guarded_settings: Settings
) -> None:
    await phone.call(FACT, verified=True)
    await purge(redis, guarded_settings.redis_prefix)
    await phone.call(SPOOFED)

    _, greeting = await phone.ring(verified=True)

    assert "88213" in greeting
