"""What a caller waits through costs as few Redis round trips as the rules allow.

A returning caller's ringing opens the call, reads their memory and records the greeting in one round
trip; a turn of a call this process has seen skips the look-up of its caller. Counted at the client: one
round trip is one send of commands on a connection (a pipeline sends all of its commands at once).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection

from callmemory.core.errors import CallAlreadyEnded
from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.store import HotSettings, HotStore
from callmemory.memory.types import CallerMemory, Turn
from support.app import purge

GREETINGS = Greetings(
    new="Hello, first-timer!",
    returning='Welcome back! Still about "{topic}"? ({topic})',
    returning_no_topic="Welcome back, you.",
)
CALLER = CallerId(bot_number="+14155550000", caller_hash="ab" * 16)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class CountingConnection(AbstractConnection):
    """Counts sends on whichever connection class the URL calls for (TCP, or the embedded unix socket)."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)


@dataclass
class Counted:
    hot: HotStore
    settings: HotSettings

    def __post_init__(self) -> None:
        self.reset()

    @property
    def round_trips(self) -> int:
        return CountingConnection.sends

    def reset(self) -> None:
        CountingConnection.sends = 0


@pytest.fixture
async def counted(redis_url: str) -> AsyncIterator[Counted]:
    pool = BlockingConnectionPool.from_url(redis_url, decode_responses=True)
    pool.connection_class = type("Counting", (CountingConnection, pool.connection_class), {})
    client = Redis.from_pool(pool)
    prefix = f"cmtest-{uuid.uuid4().hex[:10]}"
    settings = HotSettings(prefix=prefix)
    hot = HotStore(client, settings)
    # Not counted: the connection's handshake, and loading the scripts into a Redis that lacks them.
    warm_up, someone = _call(), CallerId(bot_number=CALLER.bot_number, caller_hash="cd" * 16)
    await hot.start_call(warm_up, someone, NOW, GREETINGS)
    await hot.append_turn(warm_up, someone, Role.CALLER, "warming up", NOW)
    yield Counted(hot, settings)
    await purge(client, prefix)
    await client.aclose()


def _memory(**fields: Any) -> CallerMemory:
    return CallerMemory(caller=CALLER, **fields)


def _turn(text: str) -> Turn:
    return Turn(seq=1, role=Role.CALLER, text=text, at=NOW, call_id="earlier")


def _call() -> CallRef:
    return CallRef("seed", f"c-{uuid.uuid4().hex[:8]}")


async def _hydrated(counted: Counted, memory: CallerMemory) -> None:
    assert await counted.hot.hydrate(memory)
    counted.reset()


async def test_a_returning_callers_ringing_is_one_round_trip_that_records_the_greeting(
    counted: Counted,
) -> None:
    await _hydrated(counted, _memory(call_count=2, last_topic="my order 4417", recent=(_turn("Hi"),)))
    call = _call()

    started = await counted.hot.start_call(call, CALLER, NOW, GREETINGS)

    assert counted.round_trips == 1
    assert started.greeting == 'Welcome back! Still about "my order 4417"? (my order 4417)'
    live = await counted.hot.begin_end(call, CALLER)
    assert live is not None
    assert [(t.role, t.text) for t in live.transcript] == [(Role.BOT, started.greeting)]


@pytest.mark.parametrize(
    "memory",
    [
        _memory(greeting="Welcome back! Last time: your kettle."),
        _memory(recent=(_turn("Hello?"),)),  # returning by its turns alone (not archived yet)
        _memory(call_count=1, last_topic="100% refund {topic} please"),
        _memory(call_count=3),
        _memory(call_count=1, last_topic="a", greeting="Prepared wins over the topic."),
    ],
    ids=["prepared", "turns-only", "topic-with-specials", "no-topic", "prepared-and-topic"],
)
async def test_the_greeting_redis_records_is_the_one_greetings_would_choose(
    counted: Counted, memory: CallerMemory
) -> None:
    await _hydrated(counted, memory)

    started = await counted.hot.start_call(_call(), CALLER, NOW, GREETINGS)

    assert started.memory is not None
    assert started.greeting == await counted.hot.greeting_for(started.memory, GREETINGS)


async def test_a_caller_redis_does_not_know_is_not_greeted_before_their_memory_is_read(
    counted: Counted,
) -> None:
    started = await counted.hot.start_call(_call(), CALLER, NOW, GREETINGS)

    assert started.is_new
    assert started.memory is None
    assert started.greeting is None


async def test_partial_memory_is_not_greeted_from(counted: Counted) -> None:
    await _hydrated(counted, _memory(call_count=1, last_topic="old"))
    await counted.hot.mark_partial(CALLER)

    started = await counted.hot.start_call(_call(), CALLER, NOW, GREETINGS)

    assert (started.memory, started.greeting) == (None, None)


async def test_a_call_opened_without_greetings_records_no_turn(counted: Counted) -> None:
    await _hydrated(counted, _memory(call_count=1, last_topic="old"))
    call = _call()

    started = await counted.hot.start_call(call, CALLER, NOW, None)

    assert started.greeting is None
    live = await counted.hot.begin_end(call, CALLER)
    assert live is not None
    assert live.transcript == ()


async def test_a_repeated_ringing_returns_the_first_greeting(counted: Counted) -> None:
    await _hydrated(counted, _memory(call_count=1, last_topic="the kettle"))
    call = _call()
    first = await counted.hot.start_call(call, CALLER, NOW, GREETINGS)
    await counted.hot.hydrate(_memory(call_count=2, greeting="Something newer"))

    again = await counted.hot.start_call(call, CALLER, NOW, GREETINGS)

    assert not again.is_new
    assert again.greeting == first.greeting


async def test_a_turn_of_a_call_this_process_has_seen_is_one_round_trip(counted: Counted) -> None:
    call = _call()
    await counted.hot.start_call(call, CALLER, NOW, GREETINGS)
    counted.reset()

    caller = counted.hot.known_caller(call)
    assert caller == CALLER
    await counted.hot.append_turn(call, caller, Role.CALLER, "Where is my order?", NOW)

    assert counted.round_trips == 1


async def test_a_known_call_ended_by_another_process_is_refused_as_ended(
    counted: Counted, redis_url: str
) -> None:
    call = _call()
    await counted.hot.start_call(call, CALLER, NOW, GREETINGS)
    async with Redis.from_url(redis_url, decode_responses=True) as client:
        other = HotStore(client, counted.settings)
        assert await other.begin_end(call, CALLER) is not None
        await other.finish_call(call, CALLER, counted=True, topic=None)

    assert counted.hot.known_caller(call) == CALLER  # this process did not see the hangup
    with pytest.raises(CallAlreadyEnded):
        await counted.hot.append_turn(call, CALLER, Role.CALLER, "Hello?", NOW)
    with pytest.raises(CallAlreadyEnded):
        await counted.hot.begin_end(call, CALLER, check_ref=True)
    assert counted.hot.known_caller(call) is None
