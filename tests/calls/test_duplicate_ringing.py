"""A ringing delivered several times at once: every copy hears the one greeting the transcript records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from support.phone import Phone, said

ITERATIONS = 40
COPIES = 3


async def _forget_hot_memory(redis: Redis, settings: Settings) -> None:
    """Drop every caller's hot memory, so the next ringing must rehydrate it from Postgres."""
    for suffix in ("meta", "turns", "sums"):
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:{{*}}:{suffix}")]
        if keys:
            await redis.delete(*keys)


async def _ring_copies(phone: Phone, call_id: str) -> list[str]:
    ringing = {"type": "call.ringing", "call_id": call_id, "from": phone.caller, "to": phone.bot}
    responses = await asyncio.gather(*(phone.send(ringing) for _ in range(COPIES)))
    assert {r.status_code for r in responses} == {200}
    return [said(r.json()) for r in responses]


async def _recorded_greetings(sql: Callable[..., Any], call_id: str) -> list[str]:
    rows = await sql(
        "SELECT t.text FROM turns t JOIN calls c ON c.id = t.call_id "
        "WHERE c.external_id = :call_id AND t.role = 'bot' ORDER BY t.seq",
        call_id=call_id,
    )
    return [r.text for r in rows]


async def _mismatch(
    phone: Phone, sql: Callable[..., Any], call_id: str
) -> tuple[list[str], list[str]] | None:
    """Ring `call_id` in copies at once and hang up: what was heard and recorded, if they disagree."""
    heard = await _ring_copies(phone, call_id)
    await phone.hang_up(call_id)
    recorded = await _recorded_greetings(sql, call_id)
    return None if len(recorded) == 1 and set(heard) == set(recorded) else (heard, recorded)


async def test_copies_of_a_ringing_of_a_caller_known_only_to_postgres_hear_the_recorded_greeting(
    phone: Phone, redis: Redis, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My order 4417 never arrived.")
    mismatched = []
    for n in range(ITERATIONS):
        await _forget_hot_memory(redis, settings)
        if found := await _mismatch(phone, sql, f"dup-known-{n}"):
            mismatched.append(found)

    print(f"known caller: {len(mismatched)} of {ITERATIONS} duplicated ringings heard another greeting")
    assert mismatched == []


async def test_copies_of_a_first_time_callers_ringing_hear_the_recorded_greeting(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    mismatched = []
    for n in range(ITERATIONS):
        phone.caller = f"+1415556{n:04d}"
        if found := await _mismatch(phone, sql, f"dup-new-{n}"):
            mismatched.append(found)

    print(f"first-time caller: {len(mismatched)} of {ITERATIONS} duplicated ringings heard another greeting")
    assert mismatched == []
