"""The prompt's memory context: summaries and profile included, under a hard token budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from callmemory.conversation.prompt import SPOKEN_ANSWERS, PromptBuilder
from callmemory.conversation.tokens import TokenCounter
from callmemory.core.events import Role
from callmemory.core.identity import CallerId
from callmemory.memory.archive import Archive
from callmemory.memory.types import CallerMemory, CallSummary, Found, Turn
from callmemory.services import open_services
from callmemory.settings import Settings
from support.app import purge, running, summarise_queued
from support.llm import FakeLLM
from support.phone import Phone
from support.prompt import memory_tokens

COUNTER = TokenCounter()
CALLER = CallerId(bot_number="+14155550000", caller_hash="ab" * 32)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_a_fact_from_call_1_is_in_the_prompt_of_call_20_within_the_budget(
    settings: Settings, llm: FakeLLM
) -> None:
    budget = 400
    # Without search, which would find the turn itself (tests/memory/search): here the summary keeps it.
    # Without the live-answer gate (timed in summaries/test_llm_budget.py): each of the 20 summaries
    # would first wait out its linger and quiet time after the call's answer, 1.5 s each.
    settings = settings.model_copy(
        update={"memory_context_tokens": budget, "search_enabled": False, "summary_yield_to_live": False}
    )
    async with running(settings) as client:
        phone = Phone(client)
        await phone.call("My account number is 99812.")
        await summarise_queued(settings)
        for n in range(2, 20):
            await phone.call(
                f"Call {n}: the router in the attic keeps dropping the connection every evening."
            )
            await summarise_queued(settings)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Which account is this about?")

    prompt = llm.prompt_text()
    assert "99812" in prompt
    assert "Caller: My account number is 99812." not in prompt  # long gone from the recent turns
    assert memory_tokens(settings, llm.requests[-1]) <= budget


async def test_a_summary_reaches_hot_memory_and_the_next_prompt(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My name is Ada and my account number is 99812.")
    await summarise_queued(settings)

    call_id, _ = await phone.ring()
    await phone.say(call_id, "Hello again.")

    system = llm.requests[-1]["messages"][0]["content"]
    assert "Summary of your earlier calls with this caller: The caller said: My name is Ada" in system
    assert "Open issues: My name is Ada and my account number is 99812." in system


async def test_rehydration_restores_summary_profile_and_greeting(
    phone: Phone, llm: FakeLLM, settings: Settings, redis: Redis
) -> None:
    await phone.call("My account number is 99812.")
    await summarise_queued(settings)
    assert await purge(redis, settings.redis_prefix) > 0

    call_id, greeting = await phone.ring()
    await phone.say(call_id, "Hello again.")

    assert greeting == 'Welcome back! Is it still about "My account number is"?'
    system = llm.requests[-1]["messages"][0]["content"]
    assert "Summary of your earlier calls with this caller: The caller said: My account number" in system
    assert "Open issues: My account number is 99812." in system


def _turn(call: int, seq: int, text: str, role: Role = Role.CALLER) -> Turn:
    return Turn(seq=seq, role=role, text=text, at=T0 + timedelta(days=call), call_id=f"c{call}")


def _long_memory(calls: int) -> CallerMemory:
    words = "the router in the attic keeps dropping the connection every single evening " * 8
    return CallerMemory(
        caller=CALLER,
        call_count=calls,
        summary="Has account 99812. " + words * 4,
        profile={"name": "Ada", "open_issues": ["router drops"]},
        call_summaries=tuple(
            CallSummary(f"c{n}", T0 + timedelta(days=n), f"Summary {n}: {words}")
            for n in range(calls - 10, calls)
        ),
        recent=tuple(_turn(n, s, f"Turn {n}.{s}: {words}") for n in range(calls - 3, calls) for s in (1, 2)),
    )


def test_the_memory_context_never_exceeds_the_budget() -> None:
    builder = PromptBuilder("You are a bot.", COUNTER, 500)

    for calls in (10, 100, 1000):
        prompt = builder.build(_long_memory(calls), current_call_id=None)
        assert prompt.memory_tokens <= 500
        assert prompt.dropped > 0


def test_the_oldest_material_is_dropped_first() -> None:
    memory = _long_memory(50)
    prompt = PromptBuilder("You are a bot.", COUNTER, 700).build(memory, current_call_id=None)

    system = prompt.messages[0].content
    assert "Turn 49.2:" in system  # the newest
    assert "Summary 40:" not in system  # the oldest
    assert "Has account 99812." in system  # what is known of the caller is always there


def test_what_the_caller_just_said_is_kept_even_past_the_budget() -> None:
    current = _turn(60, 1, "Please cancel order 5521 " + " ".join(["right now"] * 400))
    memory = CallerMemory(caller=CALLER, call_count=1, recent=(current,))

    prompt = PromptBuilder("You are a bot.", COUNTER, 200).build(memory, current_call_id="c60")

    assert prompt.messages[-1].role == "user"
    assert prompt.messages[-1].content.endswith("right now")
    assert prompt.memory_tokens <= 200


def test_a_first_time_caller_gets_the_bare_system_prompt() -> None:
    memory = CallerMemory(caller=CALLER, recent=(_turn(1, 1, "Hello?"),))

    prompt = PromptBuilder("You are a bot.", COUNTER, 200).build(memory, current_call_id="c1")

    assert [(m.role, m.content) for m in prompt.messages] == [
        ("system", f"You are a bot.\n\n{SPOKEN_ANSWERS}"),
        ("user", "Hello?"),
    ]


def test_every_prompt_asks_for_short_plain_spoken_answers_after_the_operators_own() -> None:
    memory = CallerMemory(caller=CALLER, call_count=3, recent=(_turn(1, 1, "Hello?"),))

    system = PromptBuilder("You are Acme's bot.", COUNTER, 200).build(memory, "c2").messages[0].content

    assert system.startswith("You are Acme's bot.\n\nYour answers are spoken aloud on a phone call.")
    for rule in ("one or two short, plain sentences", "no lists", "markdown", "placeholders", "sign-off"):
        assert rule in system


def test_the_profile_is_told_to_the_model_in_plain_sentences() -> None:
    memory = CallerMemory(
        caller=CALLER,
        call_count=2,
        profile={"name": "Ada", "open_issues": ["router drops.", "bill too high"], "promises": ["call back"]},
    )

    system = (
        PromptBuilder("You are a bot.", COUNTER, 500).build(memory, current_call_id=None).messages[0].content
    )

    assert (
        "What you know about this caller: Name: Ada. Open issues: router drops; bill too high. "
        "Promises you made: call back." in system
    )


async def test_rehydrated_call_summaries_are_in_the_prompt_oldest_first(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    settings = settings.model_copy(update={"recent_exchanges": 1})
    async with running(settings) as client:
        phone = Phone(client)
        for line in (
            "First: my account is 99812.",
            "Second: I moved to Berlin.",
            "Third: the bill is wrong.",
        ):
            await phone.call(line)
            await summarise_queued(settings)
        await purge(redis, settings.redis_prefix)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Hello again.")

    system = llm.requests[-1]["messages"][0]["content"]
    section = system[system.index("Summaries of recent calls:") :]
    first, second, third = (section.index(f"The caller said: {n}") for n in ("First", "Second", "Third"))
    assert first < second < third


async def test_rehydration_reads_memory_summaries_and_turns_in_one_query(
    phone: Phone, settings: Settings, database_url: str
) -> None:
    await phone.call("My account number is 99812.")
    await summarise_queued(settings)
    await phone.call("I moved to Berlin.")
    await summarise_queued(settings)
    engine = create_async_engine(database_url)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    async with open_services(settings) as services:
        caller = services.memory.address("+14155550000", phone.caller)

    memory = await Archive(engine).load_caller(caller, recent_turns=20, call_summaries=10)
    await engine.dispose()

    assert memory is not None
    assert (memory.call_count, len(memory.recent), len(memory.call_summaries)) == (2, 6, 2)
    assert "99812" in (memory.summary or "")
    assert memory.greeting is not None
    assert len(statements) == 1


def test_a_calls_memory_context_is_tokenised_once_for_all_its_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = TokenCounter()
    encoded: list[int] = []
    encode = counter._enc.encode

    def counting(text: str, **kwargs: Any) -> list[int]:
        encoded.append(len(text))
        return encode(text, **kwargs)

    monkeypatch.setattr(counter._enc, "encode", counting)
    context = "Caller: where is my order 4417? You: on its way. " * 100  # a long assembled context

    counts = [counter.count(context) for _turn in range(3)]

    assert len(set(counts)) == 1
    assert encoded == [len(context)]


def _found(call: int, seq: int | None, text: str, rank: float = 1.0) -> Found:
    return Found(
        call_id=f"c{call}",
        call_started_at=T0 + timedelta(days=call),
        text=text,
        rank=rank,
        seq=seq,
        role=None if seq is None else Role.CALLER,
    )


def test_search_matches_are_shown_dated_best_first_within_the_budget() -> None:
    found = (_found(3, 2, "My dishwasher serial is DW-4471."), _found(7, None, "Asked about the dishwasher."))
    memory = replace(_long_memory(1000), found=found)

    prompt = PromptBuilder("You are a bot.", COUNTER, 500).build(memory, current_call_id=None)

    system = prompt.messages[0].content
    assert (
        "what matches what they just said (best match first):\n"
        "Call on 2026-01-04 00:00 UTC: Caller: My dishwasher serial is DW-4471.\n"
        "Call on 2026-01-08 00:00 UTC, summary: Asked about the dishwasher."
    ) in system
    assert prompt.found == found
    assert prompt.memory_tokens <= 500


def test_search_matches_take_at_most_their_share_of_the_budget() -> None:
    found = tuple(
        _found(n, 1, f"Fact {n}: " + "the parcel was left at the back door " * 5) for n in range(40)
    )
    memory = replace(_long_memory(1000), found=found)

    prompt = PromptBuilder("You are a bot.", COUNTER, 1000, search_share=0.3).build(memory, None)

    section = prompt.context.split("(best match first):\n")[1].split("\n\n")[0]
    assert 0 < COUNTER.count(section) <= 300
    assert prompt.found == found[: len(prompt.found)]  # the best ones
    assert prompt.memory_tokens <= 1000


def test_a_match_among_the_recent_turns_is_shown_once() -> None:
    memory = _long_memory(50)
    recent = memory.recent[-1]
    found = (_found(49, recent.seq, recent.text),)

    prompt = PromptBuilder("You are a bot.", COUNTER, 2000).build(replace(memory, found=found), None)

    assert prompt.context.count(recent.text) == 1
    assert prompt.found == ()


def test_a_match_from_the_current_call_is_left_to_the_chat_turns() -> None:
    current = _turn(60, 1, "My dishwasher is leaking.")
    memory = CallerMemory(
        caller=CALLER, call_count=1, recent=(current,), found=(_found(60, 1, current.text),)
    )

    prompt = PromptBuilder("You are a bot.", COUNTER, 500).build(memory, current_call_id="c60")

    assert prompt.found == ()
    assert "best match first" not in prompt.context
