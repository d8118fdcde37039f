"""A Redis restart costs the callers a reconnection each, not half a minute of 503s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.phone import Phone
from support.redis_server import OwnRedis

CALLERS = 20


async def test_the_requests_right_after_a_redis_restart_are_answered_on_fresh_connections(
    settings: Settings, llm: FakeLLM, tmp_path: Path
) -> None:
    with OwnRedis(tmp_path / "redis").running() as own:
        async with running(settings.model_copy(update={"redis_url": own.url})) as http:
            phones = [Phone(http, caller=f"+1415555{3000 + n}") for n in range(CALLERS)]
            # All at once, before and after: every call takes a pooled connection of its own, and after
            # the restart each of those is dead.
            calls = await asyncio.gather(*(phone.ring() for phone in phones))
            own.kill()
            own.start()
            restarted = time.monotonic()
            turns = await asyncio.gather(
                *(
                    phone.send(
                        {
                            "type": "call.speech_recognized",
                            "call_id": call_id,
                            "from": phone.caller,
                            "speech": "Are you still there?",
                        }
                    )
                    for phone, (call_id, _) in zip(phones, calls, strict=True)
                )
            )
            took = time.monotonic() - restarted
            transcripts = Redis.from_url(own.url, decode_responses=True)
            logs = [k async for k in transcripts.scan_iter(match=f"{settings.redis_prefix}:*:log")]
            lengths = [await transcripts.llen(k) for k in logs]
            await transcripts.aclose()

    statuses = [turn.status_code for turn in turns]
    print(f"\nright after a Redis restart: {statuses.count(200)} of {CALLERS} turns answered in {took:.2f} s")
    assert statuses == [200] * CALLERS
    assert lengths == [3] * CALLERS  # greeting, caller, answer: no turn recorded twice by a resend
