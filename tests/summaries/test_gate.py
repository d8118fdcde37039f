"""A process answering callers keeps one member in Redis while it has answers in flight, for the summary
worker (another process) to give way to."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from callmemory.conversation.prompt import Message
from callmemory.conversation.responder import Answer
from callmemory.memory.hot.client import HotRedis, redis_client
from callmemory.summaries.gate import Announced, LiveAnswers
from support.app import purge
from support.serving import free_port
from support.waiting import eventually


@pytest.fixture
async def prefix(redis: HotRedis) -> AsyncIterator[str]:
    prefix = f"cmtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    await purge(redis, prefix)


def live_answers(
    redis: HotRedis, prefix: str, *, answer_timeout_s: float = 4, refresh_s: float = 10, linger_s: float = 0.5
) -> LiveAnswers:
    return LiveAnswers(
        redis,
        prefix=prefix,
        answer_timeout_s=answer_timeout_s,
        quiet_s=0,
        refresh_s=refresh_s,
        linger_s=linger_s,
    )


async def members(redis: HotRedis, prefix: str) -> list[tuple[str, float]]:
    scored: list[Any] = await redis.zrange(f"{prefix}:llm:live", 0, -1, withscores=True)
    return [(str(member), float(score)) for member, score in scored]


async def test_answers_in_flight_in_one_process_are_one_member(redis: HotRedis, prefix: str) -> None:
    live = live_answers(redis, prefix)

    for _ in range(5):
        live.began()
    await eventually(lambda: live_seen(redis, prefix))

    assert len(await members(redis, prefix)) == 1
    assert await live.busy()


async def live_seen(redis: HotRedis, prefix: str) -> bool:
    return bool(await members(redis, prefix))


async def test_the_member_is_scored_past_the_deadline_of_the_answer_in_flight(
    redis: HotRedis, prefix: str
) -> None:
    live = live_answers(redis, prefix, answer_timeout_s=4, refresh_s=10)

    before = time.time()
    live.began()
    await eventually(lambda: live_seen(redis, prefix))

    [(_, score)] = await members(redis, prefix)
    assert before + 4 + 1 + 10 <= score <= time.time() + 4 + 1 + 10


async def test_the_member_stays_while_one_answer_is_still_in_flight(redis: HotRedis, prefix: str) -> None:
    live = live_answers(redis, prefix, linger_s=0.05)
    live.began()
    live.began()
    await eventually(lambda: live_seen(redis, prefix))

    live.ended()
    await asyncio.sleep(0.3)

    assert await live.busy()


async def test_the_member_goes_shortly_after_the_last_answer_ends(redis: HotRedis, prefix: str) -> None:
    # The linger leaves 1 s for the one round trip that must see the member still there.
    live = live_answers(redis, prefix, linger_s=1.0)
    live.began()
    await eventually(lambda: live_seen(redis, prefix))

    live.ended()
    still_there = await live.busy()
    await eventually(lambda: no_live(live), within_s=3)

    assert still_there  # for the linger time: a caller's next turn often follows


async def no_live(live: LiveAnswers) -> bool:
    return not await live.busy()


async def test_an_answer_beginning_within_the_linger_keeps_the_member_as_it_was(
    redis: HotRedis, prefix: str
) -> None:
    live = live_answers(redis, prefix, linger_s=0.3)
    live.began()
    await eventually(lambda: live_seen(redis, prefix))
    written = await members(redis, prefix)

    live.ended()
    live.began()
    await asyncio.sleep(0.6)

    assert await members(redis, prefix) == written


async def test_an_answer_the_member_would_not_cover_rewrites_it_later(redis: HotRedis, prefix: str) -> None:
    live = live_answers(redis, prefix, answer_timeout_s=0.1, refresh_s=0.2)
    live.began()
    await eventually(lambda: live_seen(redis, prefix))
    [(_, first)] = await members(redis, prefix)

    await asyncio.sleep(0.3)  # past the refresh margin: the next answer's deadline is beyond the score
    live.began()

    async def rewritten() -> bool:
        [(_, score)] = await members(redis, prefix)
        return score > first

    await eventually(rewritten, within_s=2)


async def test_the_member_of_a_process_that_died_stops_counting_at_its_deadline(
    redis: HotRedis, prefix: str
) -> None:
    dead = live_answers(redis, prefix, answer_timeout_s=0.1, refresh_s=0.1)
    dead.began()  # and never ends
    await eventually(lambda: live_seen(redis, prefix))
    reader = live_answers(redis, prefix)
    busy_at_first = await reader.busy()

    await eventually(lambda: no_live(reader), within_s=5)

    assert busy_at_first


async def test_settling_removes_the_member_of_a_process_with_no_answer_in_flight(
    redis: HotRedis, prefix: str
) -> None:
    live = live_answers(redis, prefix, linger_s=60)
    live.began()
    live.ended()

    await live.settle()

    assert await members(redis, prefix) == []


class Replies:
    async def answer(self, messages: Sequence[Message]) -> Answer:
        await asyncio.sleep(0.01)
        return Answer("We close at six.")


async def test_a_caller_is_answered_while_redis_cannot_be_told(prefix: str) -> None:
    unreachable = redis_client(f"redis://127.0.0.1:{free_port()}/0", max_connections=2, timeout_s=0.5)
    announced = Announced(Replies(), live_answers(unreachable, prefix))
    try:
        answers = [await announced.answer([Message("user", "When do you close?")]) for _ in range(3)]
        await announced.settle()
    finally:
        await unreachable.aclose()

    assert answers == [Answer("We close at six.")] * 3


async def test_each_process_has_a_member_of_its_own(redis: HotRedis, prefix: str) -> None:
    first, second = live_answers(redis, prefix), live_answers(redis, prefix)

    first.began()
    second.began()

    async def both() -> bool:
        return len(await members(redis, prefix)) == 2

    await eventually(both)
    first.ended()
    await first.settle()

    assert len(await members(redis, prefix)) == 1
