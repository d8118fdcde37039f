"""Whole VoIPBin calls replayed as event sequences, in order, shuffled and with redeliveries, in both
modes: the archive holds what was said, exactly once, in order, and the next call starts from it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import purge
from support.llm import FakeLLM
from support.voipbin import (
    MANAGED_BOT,
    FakeVoipbinApi,
    ScriptedCall,
    Voipbin,
    archived,
    brief_of,
    greeting_of,
)

Rows = Callable[..., Any]
Event = dict[str, Any]

CONVERSATION = [
    ("user", "Hi, I need help resetting my password."),
    ("assistant", "Of course. I have sent a reset link to your email."),
    ("user", "The email never arrived, can you check the address?"),
    ("assistant", "It went to j.doe at example dot com. I have sent it again."),
]
CALLER_LINES = ["Hello, my parcel 4417 never arrived.", "It was due on Monday.", "Thanks, goodbye."]
SUMMARY = "The caller could not reset their password; the link was sent again."
SEEDS = range(8)


def with_redeliveries(events: list[Event], rng: random.Random, count: int = 4) -> list[Event]:
    """Some events delivered a second time, later than the first (VoIPBin retries and duplicates)."""
    out = list(events)
    for original in rng.sample(events, count):
        first = out.index(original)
        out.insert(rng.randint(first + 1, len(out)), original)
    return out


def managed_call(call: ScriptedCall) -> list[Event]:
    return [
        call.created(),
        call.progressing(),
        call.ai_message("system", "You are a helpful assistant. What you know: ${caller.memory}"),
        *(call.ai_message(role, text) for role, text in CONVERSATION),
        call.summary(SUMMARY),
        call.hangup(),
    ]


def own_llm_call(call: ScriptedCall, rng: random.Random | None) -> list[Event]:
    """The call's events; shuffled, the bookkeeping events land anywhere among the caller's lines.

    The caller's lines keep their order and the hangup comes last: in own-LLM mode the conversation is
    live (each answer follows the line it answers), so that is the order in which it happened.
    """
    lines = [call.transcript(text) for text in CALLER_LINES]
    others = [call.created(), call.progressing(), call.transcribe_created()]
    if rng is None:
        return [*others, *lines, call.hangup()]
    events = list(lines)
    for event in others:
        events.insert(rng.randint(0, len(events)), event)
    return [*with_redeliveries(events, rng), call.hangup()]


def expected_own_llm(greeting: str, spoken: list[str]) -> list[tuple[str, str]]:
    """Each caller line, each followed by the answer the bot spoke to it, if it spoke one."""
    expected = [("bot", greeting)]
    for line in CALLER_LINES:
        expected.append(("caller", line))
        if f"You said: {line}" in spoken:
            expected.append(("bot", f"You said: {line}"))
    return expected


def expected_managed(greeting: str) -> list[tuple[str, str]]:
    """The greeting, then the AI conversation as the caller heard it (system messages are not heard)."""
    return [("bot", greeting)] + [
        ("caller" if role == "user" else "bot", text) for role, text in CONVERSATION
    ]


# -- managed-AI mode -------------------------------------------------------------------------------
async def test_a_managed_ai_call_in_order_is_archived_as_said(
    voipbin: Voipbin, sql: Rows, voipbin_settings: Settings
) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(call)

    await voipbin.deliver_all(managed_call(call))

    expected = expected_managed(voipbin_settings.greeting_new)
    assert await archived(sql, call) == expected


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("fetch_names_the_activeflow", [True, False])
async def test_a_managed_ai_call_shuffled_with_redeliveries_is_archived_once_in_order(
    voipbin: Voipbin, sql: Rows, voipbin_settings: Settings, seed: int, fetch_names_the_activeflow: bool
) -> None:
    rng = random.Random(seed)
    call = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(call, activeflow=fetch_names_the_activeflow)
    events = managed_call(call)
    rng.shuffle(events)

    await voipbin.deliver_all(with_redeliveries(events, rng))

    expected = expected_managed(voipbin_settings.greeting_new)
    assert await archived(sql, call) == expected
    [row] = await sql("SELECT summary, turn_count FROM calls WHERE external_id = :id", id=call.call_id)
    assert (row.summary, row.turn_count) == (SUMMARY, len(expected))


@pytest.mark.parametrize("seed", SEEDS)
async def test_the_next_managed_ai_call_is_greeted_and_briefed_from_the_last(
    voipbin: Voipbin, seed: int
) -> None:
    rng = random.Random(seed)
    first = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(first)
    events = managed_call(first)
    rng.shuffle(events)
    await voipbin.deliver_all(with_redeliveries(events, rng))

    actions = await voipbin.actions(ScriptedCall(bot=MANAGED_BOT))

    assert "I need help resetting my password" in greeting_of(actions)
    brief = brief_of(actions)
    assert "called 1 time(s) before" in brief
    assert all(text in brief for _, text in CONVERSATION)
    assert brief.index(CONVERSATION[0][1]) < brief.index(CONVERSATION[-1][1])


# -- own-LLM mode ----------------------------------------------------------------------------------
async def test_an_own_llm_call_in_order_is_answered_and_archived_as_said(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows, voipbin_settings: Settings
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)

    await voipbin.deliver_all(own_llm_call(call, None))

    spoken = voipbin_api.said(call.call_id)
    assert spoken == [f"You said: {line}" for line in CALLER_LINES]
    assert await archived(sql, call) == expected_own_llm(voipbin_settings.greeting_new, spoken)


@pytest.mark.parametrize("seed", SEEDS)
async def test_an_own_llm_call_shuffled_with_redeliveries_is_archived_once_in_order(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows, voipbin_settings: Settings, seed: int
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)

    await voipbin.deliver_all(own_llm_call(call, random.Random(seed)))

    spoken = voipbin_api.said(call.call_id)
    assert spoken, "the caller got no answer"
    assert spoken[-1] == f"You said: {CALLER_LINES[-1]}"
    assert await archived(sql, call) == expected_own_llm(voipbin_settings.greeting_new, spoken)


@pytest.mark.parametrize("seed", SEEDS[:3])
async def test_the_next_own_llm_call_is_greeted_and_prompted_from_the_last(
    voipbin: Voipbin, llm: FakeLLM, seed: int
) -> None:
    first = ScriptedCall()
    await voipbin.actions(first)
    await voipbin.deliver_all(own_llm_call(first, random.Random(seed)))

    second = ScriptedCall()
    actions = await voipbin.actions(second)
    await voipbin.deliver_all([second.transcribe_created(), second.transcript("Any news?")])

    assert "my parcel 4417 never arrived" in greeting_of(actions)
    prompt = llm.prompt_text()
    assert all(line in prompt for line in CALLER_LINES)
    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": "Any news?"}


@pytest.mark.parametrize("seed", SEEDS[:4])
async def test_a_managed_ai_call_delivered_concurrently_is_archived_once_in_order(
    voipbin: Voipbin, sql: Rows, voipbin_settings: Settings, seed: int
) -> None:
    rng = random.Random(seed)
    call = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(call)
    events = managed_call(call)
    rng.shuffle(events)

    await asyncio.gather(*(voipbin.deliver_retrying(e) for e in with_redeliveries(events, rng)))

    expected = expected_managed(voipbin_settings.greeting_new)
    assert await archived(sql, call) == expected
    [row] = await sql("SELECT summary FROM calls WHERE external_id = :id", id=call.call_id)
    assert row.summary == SUMMARY


async def test_the_next_call_is_briefed_from_postgres_when_redis_lost_the_memory(
    voipbin: Voipbin, redis: Redis, voipbin_settings: Settings
) -> None:
    first = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(first)
    await voipbin.deliver_all(managed_call(first))
    await purge(redis, voipbin_settings.redis_prefix)

    actions = await voipbin.actions(ScriptedCall(bot=MANAGED_BOT))

    assert "I need help resetting my password" in greeting_of(actions)
    assert all(text in brief_of(actions) for _, text in CONVERSATION)


# -- spoken order: VoIPBin delivers each event in its own goroutine, a failed one again a second later --
SPOKEN = [
    "Any news about that parcel?",
    "I also want a refund for order 5521.",
    "My address changed last week, by the way.",
    "It is 12 Elm Street now.",
    "Thanks, bye.",
]
ORDER_SEEDS = range(24)


def heard_out_of_order(call: ScriptedCall, rng: random.Random) -> list[Event]:
    """The caller's sentences, made in the order they were said, arriving in any order among the call's
    other events, some twice; the hangup last."""
    lines = [call.transcript(text) for text in SPOKEN]
    events = [call.created(), call.progressing(), call.transcribe_created(), *lines]
    rng.shuffle(events)
    return [*with_redeliveries(events, rng), call.hangup()]


def order_problems(turns: list[tuple[str, str]], spoken: list[str], api: FakeVoipbinApi) -> list[str]:
    """What is wrong with an own-LLM call's archive and answers, against SPOKEN; empty when nothing is."""
    problems = []
    if [text for role, text in turns if role == "caller"] != SPOKEN:
        problems.append("caller turns not in spoken order")
    for before, (role, text) in itertools.pairwise(turns):
        if role == "bot" and before != ("caller", text.removeprefix("You said: ")):
            problems.append(f"answer {text!r} does not follow the line it answers")
    if not spoken or spoken[-1] != f"You said: {SPOKEN[-1]}":
        problems.append("the last-said line was not answered last")
    if len(spoken) != len(set(spoken)):
        problems.append("an answer was spoken twice")
    if api.refused:
        problems.append(f"talks refused (after hangup?): {api.refused}")
    return problems


@pytest.mark.parametrize("seed", ORDER_SEEDS)
async def test_an_own_llm_call_heard_out_of_order_is_archived_and_answered_in_spoken_order(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows, seed: int
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)

    await voipbin.deliver_all(heard_out_of_order(call, random.Random(seed)))

    spoken = voipbin_api.said(call.call_id)
    assert order_problems((await archived(sql, call))[1:], spoken, voipbin_api) == []


@pytest.mark.parametrize("seed", ORDER_SEEDS[:8])
async def test_an_own_llm_call_delivered_concurrently_is_archived_and_answered_in_spoken_order(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, llm: FakeLLM, sql: Rows, seed: int
) -> None:
    llm.delay_s = 0.05  # answers overlap later deliveries, as a real model's would
    call = ScriptedCall()
    await voipbin.actions(call)
    *events, hangup = heard_out_of_order(call, random.Random(seed))

    await asyncio.gather(*(voipbin.deliver_retrying(e) for e in events))
    await voipbin.deliver_retrying(hangup)

    spoken = voipbin_api.said(call.call_id)
    assert order_problems((await archived(sql, call))[1:], spoken, voipbin_api) == []


@pytest.mark.parametrize("seed", ORDER_SEEDS[:8])
async def test_lines_released_together_get_one_answer_to_the_last_said_with_all_of_them_in_the_prompt(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, llm: FakeLLM, seed: int
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)
    lines = [call.transcript(text) for text in SPOKEN]
    random.Random(seed).shuffle(lines)

    await voipbin.deliver_all([*lines, call.transcribe_created()])  # held until their transcribe is known

    assert voipbin_api.said(call.call_id) == [f"You said: {SPOKEN[-1]}"]
    [request] = llm.requests
    prompt = llm.prompt_text()
    assert sorted(SPOKEN, key=prompt.index) == SPOKEN
    assert request["messages"][-1] == {"role": "user", "content": SPOKEN[-1]}


@pytest.mark.parametrize("seed", ORDER_SEEDS[:4])
async def test_a_line_said_before_one_already_answered_is_recorded_in_its_place_and_not_answered(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows, voipbin_settings: Settings, seed: int
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)
    first, second = call.transcript(SPOKEN[0]), call.transcript(SPOKEN[1])

    await voipbin.deliver_all([call.transcribe_created(), second, first, call.hangup()])

    assert voipbin_api.said(call.call_id) == [f"You said: {SPOKEN[1]}"]
    assert await archived(sql, call) == [
        ("bot", voipbin_settings.greeting_new),
        ("caller", SPOKEN[0]),
        ("caller", SPOKEN[1]),
        ("bot", f"You said: {SPOKEN[1]}"),
    ]


async def test_the_next_call_is_greeted_and_prompted_in_the_spoken_order_of_the_last(
    voipbin: Voipbin, llm: FakeLLM
) -> None:
    first = ScriptedCall()
    await voipbin.actions(first)
    lines = [first.transcript(text) for text in SPOKEN]
    await voipbin.deliver_all([first.transcribe_created(), *reversed(lines), first.hangup()])

    second = ScriptedCall()
    actions = await voipbin.actions(second)
    await voipbin.deliver_all([second.transcribe_created(), second.transcript("Hello again.")])

    assert "Any news about that parcel" in greeting_of(actions)  # the topic: what was said first
    prompt = llm.prompt_text()
    assert sorted(SPOKEN, key=prompt.index) == SPOKEN
