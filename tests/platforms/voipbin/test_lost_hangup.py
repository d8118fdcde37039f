"""VoIPBin calls whose `call_hangup` never came (VoIPBin gives up after 3 tries, 1 s apart) are archived
by the idle sweeper with every turn, in spoken order, once; what arrives after the sweep adds nothing
twice, and a turn first delivered then joins the archived call in its place.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from callmemory.services import open_services
from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.voipbin import MANAGED_BOT, FakeVoipbinApi, ScriptedCall, Voipbin, archived
from support.waiting import eventually

Rows = Callable[..., Any]
Event = dict[str, Any]

# Long enough that a loaded machine never sweeps a call between its fetch and its messages.
IDLE_S = 3.0
STEP = timedelta(milliseconds=50)  # between one message and the next: the idle clock runs on their times
CONVERSATION = [
    ("user", "Hi, my parcel 4417 never arrived."),
    ("assistant", "I am sorry to hear that. When was it due?"),
    ("user", "Last Monday."),
    ("assistant", "I see it was held at the depot. I will have it sent again."),
    ("user", "Can it come before Friday?"),
    ("assistant", "Yes, it will arrive on Thursday."),
]


def sweeping(settings: Settings) -> Settings:
    return settings.model_copy(update={"idle_call_s": IDLE_S, "sweep_interval_s": 0.05})


def quiet(settings: Settings) -> Settings:
    """An instance that sweeps nothing by itself."""
    return settings.model_copy(update={"background_tasks": False})


@pytest.fixture
async def voipbin(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi
) -> AsyncIterator[Voipbin]:
    async with running(sweeping(voipbin_settings)) as http:
        yield Voipbin(http, voipbin_api)


async def fetched(voipbin: Voipbin, call: ScriptedCall) -> ScriptedCall:
    """The call after its fetch: what it says from now on is said after the greeting."""
    await voipbin.actions(call)
    return replace(call, start=datetime.now(UTC))


def conversation(call: ScriptedCall) -> list[Event]:
    """The AI's messages, made in the order they were said, with a system message nobody heard."""
    return [
        call.ai_message("system", "You are a helpful assistant. What you know: ${caller.memory}"),
        *(call.ai_message(role, text) for role, text in CONVERSATION),
    ]


def expected(greeting: str) -> list[tuple[str, str]]:
    return [("bot", greeting)] + [
        ("caller" if role == "user" else "bot", text) for role, text in CONVERSATION
    ]


def shuffled(events: list[Event], seed: int = 7) -> list[Event]:
    out = list(events)
    random.Random(seed).shuffle(out)
    return out


async def swept(sql: Rows, call: ScriptedCall) -> None:
    async def archived_idle() -> bool:
        rows = await sql("SELECT end_reason FROM calls WHERE external_id = :id", id=call.call_id)
        return [r.end_reason for r in rows] == ["idle_timeout"]

    await eventually(archived_idle)


async def test_a_managed_ai_call_whose_hangup_never_came_is_archived_by_the_sweeper_with_every_turn_in_order(
    voipbin: Voipbin, sql: Rows, voipbin_settings: Settings
) -> None:
    call = await fetched(voipbin, ScriptedCall(bot=MANAGED_BOT, step=STEP))

    await voipbin.deliver_all(shuffled(conversation(call)))
    await swept(sql, call)

    assert await archived(sql, call) == expected(voipbin_settings.greeting_new)
    [row] = await sql("SELECT turn_count FROM calls WHERE external_id = :id", id=call.call_id)
    assert row.turn_count == len(CONVERSATION) + 1


async def test_a_hangup_and_redeliveries_after_the_sweep_add_nothing(
    voipbin: Voipbin, sql: Rows, voipbin_settings: Settings
) -> None:
    call = await fetched(voipbin, ScriptedCall(bot=MANAGED_BOT, step=STEP))
    messages = conversation(call)
    await voipbin.deliver_all(shuffled(messages))
    await swept(sql, call)

    outcomes = await voipbin.deliver_all([call.hangup(), messages[2], call.hangup()])

    assert outcomes == ["applied", "duplicate", "applied"]
    assert await archived(sql, call) == expected(voipbin_settings.greeting_new)
    [row] = await sql("SELECT c.end_reason, r.call_count FROM calls c JOIN callers r ON r.id = c.caller_id")
    assert (row.end_reason, row.call_count) == ("idle_timeout", 1)


async def test_a_message_first_delivered_after_the_sweep_joins_the_archived_call_in_its_place(
    voipbin: Voipbin, sql: Rows, voipbin_settings: Settings
) -> None:
    call = await fetched(voipbin, ScriptedCall(bot=MANAGED_BOT, step=STEP))
    messages = conversation(call)
    late = messages.pop(4)  # the AI's second answer, retried by VoIPBin until after the sweep
    await voipbin.deliver_all(shuffled(messages))
    await swept(sql, call)

    outcomes = await voipbin.deliver_all([late, call.hangup()])

    assert outcomes == ["applied", "applied"]
    assert await archived(sql, call) == expected(voipbin_settings.greeting_new)


async def test_a_managed_ai_call_is_archived_whole_by_an_instance_started_after_its_messages(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, sql: Rows
) -> None:
    call = ScriptedCall(bot=MANAGED_BOT, step=STEP)
    async with running(quiet(voipbin_settings)) as http:
        before = Voipbin(http, voipbin_api)
        call = await fetched(before, call)
        await before.deliver_all(shuffled(conversation(call)))

    async with running(sweeping(voipbin_settings)) as http:
        await swept(sql, call)
        after = await Voipbin(http, voipbin_api).deliver_all([call.hangup()])

    assert after == ["applied"]
    assert await archived(sql, call) == expected(voipbin_settings.greeting_new)


async def test_a_managed_ai_call_longer_than_the_idle_time_is_not_swept_while_its_ai_talks(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, sql: Rows
) -> None:
    idle_s = 1.5
    talking = voipbin_settings.model_copy(update={"idle_call_s": idle_s, "sweep_interval_s": 0.05})
    step = timedelta(seconds=0.3)
    lines = [("user" if n % 2 == 0 else "assistant", f"Line {n} of a long call.") for n in range(12)]
    async with running(talking) as http:
        voipbin = Voipbin(http, voipbin_api)
        call = await fetched(voipbin, ScriptedCall(bot=MANAGED_BOT, step=step))
        for role, text in lines:  # 3.6 s of talk, each message delivered when it is said
            message = call.ai_message(role, text)
            said = datetime.fromisoformat(message["data"]["tm_create"])
            await asyncio.sleep(max(0.0, (said - datetime.now(UTC)).total_seconds()))
            await voipbin.deliver_all([message])
        outcomes = await voipbin.deliver_all([call.hangup()])

    assert outcomes == ["applied"]
    [row] = await sql("SELECT end_reason, turn_count FROM calls WHERE external_id = :id", id=call.call_id)
    assert (row.end_reason, row.turn_count) == ("normal", len(lines) + 1)


async def test_hangups_racing_two_sweeping_instances_archive_every_call_once_with_every_turn(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, sql: Rows
) -> None:
    settings = quiet(voipbin_settings)
    async with (
        running(settings) as http,
        open_services(settings) as one,
        open_services(settings) as two,
    ):
        voipbin = Voipbin(http, voipbin_api)
        calls = []
        for n in range(8):
            call = await fetched(voipbin, ScriptedCall(caller=f"+1415555{n:04d}", bot=MANAGED_BOT, step=STEP))
            await voipbin.deliver_all(shuffled(conversation(call), seed=n))
            calls.append(call)
        await asyncio.sleep(10 * STEP.total_seconds())  # every message's time has passed: all are idle

        sweeps = [
            services.memory.sweep_idle(idle=timedelta(0), limit=100, lock_ttl=timedelta(seconds=60))
            for services in (one, two)
        ]
        await asyncio.gather(*sweeps, *(voipbin.deliver_retrying(call.hangup()) for call in calls))

    for call in calls:
        assert await archived(sql, call) == expected(voipbin_settings.greeting_new)
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [1] * len(calls)


async def test_a_turn_an_earlier_version_buffered_is_archived_at_the_hangup(
    voipbin: Voipbin, sql: Rows, redis: Redis, voipbin_settings: Settings
) -> None:
    call = await fetched(voipbin, ScriptedCall(bot=MANAGED_BOT, step=STEP))
    first = call.ai_message("user", "Said before the upgrade.")
    # How the version before this one kept a managed AI's message until the hangup (a call in progress
    # across an upgrade): a member of the call's buffer, scored by when it was said.
    said = datetime.fromisoformat(first["data"]["tm_create"])
    member = {
        "id": first["data"]["id"],
        "r": "caller",
        "t": "Said before the upgrade.",
        "at": said.isoformat(),
    }
    buffer = f"{voipbin_settings.redis_prefix}:vb:{{c:{call.call_id}}}:buf"
    await redis.zadd(buffer, {json.dumps(member): said.timestamp()})

    await voipbin.deliver_all([call.ai_message("assistant", "Said after it."), call.hangup(), call.hangup()])

    assert await archived(sql, call) == [
        ("bot", voipbin_settings.greeting_new),
        ("caller", "Said before the upgrade."),
        ("bot", "Said after it."),
    ]
    assert await redis.exists(buffer) == 0


# -- own-LLM mode: transcripts held until their transcribe is known ----------------------------------
async def test_held_transcripts_released_before_the_sweep_are_archived_with_the_call(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows, voipbin_settings: Settings
) -> None:
    call = await fetched(voipbin, ScriptedCall(step=STEP))

    outcomes = await voipbin.deliver_all(
        [call.transcript("First question."), call.transcript("Second question."), call.transcribe_created()]
    )
    await swept(sql, call)

    assert outcomes == ["held", "held", "applied"]
    assert await archived(sql, call) == [
        ("bot", voipbin_settings.greeting_new),
        ("caller", "First question."),
        ("caller", "Second question."),
        ("bot", "You said: Second question."),
    ]


async def test_held_transcripts_released_after_the_sweep_join_the_archived_call_in_their_place(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows, voipbin_settings: Settings
) -> None:
    call = await fetched(voipbin, ScriptedCall(step=STEP))
    held = await voipbin.deliver_all(
        [call.transcript("First question."), call.transcript("Second question.")]
    )
    await swept(sql, call)

    released = await voipbin.deliver_all([call.transcribe_created(), call.hangup()])

    assert (held, released) == (["held", "held"], ["applied", "applied"])
    assert await archived(sql, call) == [
        ("bot", voipbin_settings.greeting_new),
        ("caller", "First question."),
        ("caller", "Second question."),
    ]
    assert voipbin_api.talks == []  # nobody is left to hear an answer
