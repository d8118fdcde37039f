"""Many calls of one caller at once: nothing lost, nothing doubled, every call's order kept."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from support.llm import FakeLLM
from support.phone import Phone
from support.waiting import eventually

CALLS = 100
TURNS = 3


async def test_a_hundred_simultaneous_calls_of_one_caller_are_archived_whole_and_in_order(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any], redis: Redis, settings: Settings
) -> None:
    llm.delay_s = 0.01

    async def one_call(n: int) -> None:
        call_id, _ = await phone.ring(f"c-{n}")
        for turn in range(TURNS):
            await phone.say(call_id, f"call {n} line {turn}")
        await phone.hang_up(call_id)

    await asyncio.gather(*(one_call(n) for n in range(CALLS)))

    # A hangup whose archive write finds no free connection within the database timeout (2 s; a hundred
    # hangups at once on a loaded machine) leaves the call to the flusher, which archives it within its
    # interval: what must hold is the archive once they are done, however they got there.
    async def all_archived() -> bool:
        return [r.count for r in await sql("SELECT count(*) FROM calls")] == [CALLS]

    await eventually(all_archived, within_s=60)
    rows = await sql(
        "SELECT c.external_id, t.seq, t.role, t.text FROM turns t JOIN calls c ON c.id = t.call_id "
        "ORDER BY c.external_id, t.seq"
    )
    by_call: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_call[row.external_id].append(row)
    assert len(by_call) == CALLS
    for n in range(CALLS):
        turns = by_call[f"c-{n}"]
        assert [t.seq for t in turns] == list(range(1, 2 * TURNS + 2))
        assert [t.text for t in turns if t.role == "caller"] == [f"call {n} line {i}" for i in range(TURNS)]
        assert [t.text for t in turns if t.role == "bot"][1:] == [
            f"You said: call {n} line {i}" for i in range(TURNS)
        ]
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [CALLS]

    (turns_key,) = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:turns")]
    recent = [json.loads(t) for t in await redis.lrange(turns_key, 0, -1)]
    assert len(recent) == 2 * settings.recent_exchanges
    assert len({(t["c"], t["s"]) for t in recent}) == len(recent)
    for call_id in {t["c"] for t in recent}:
        seqs = [t["s"] for t in recent if t["c"] == call_id]
        assert seqs == sorted(seqs)
