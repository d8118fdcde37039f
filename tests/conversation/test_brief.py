"""The memory brief a platform's own AI reads: our prompt's memory context, bounded, newest kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from callmemory.conversation.brief import NEW_CALLER, memory_brief
from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.tokens import TokenCounter
from callmemory.core.events import Role
from callmemory.core.identity import CallerId
from callmemory.memory.types import CallerMemory, Turn

CALLER = CallerId(bot_number="+15559876543", caller_hash="ab" * 32)
PROMPT = PromptBuilder("You are a phone assistant.", TokenCounter(), budget_tokens=2000)


def _memory(*texts: str) -> CallerMemory:
    turns = tuple(
        Turn(
            seq=i + 1,
            role=Role.CALLER if i % 2 == 0 else Role.BOT,
            text=text,
            at=datetime(2026, 1, 1, tzinfo=UTC),
            call_id="c-1",
        )
        for i, text in enumerate(texts)
    )
    return CallerMemory(caller=CALLER, call_count=1, last_topic="my order 4417", recent=turns)


def test_a_new_caller_is_said_to_be_new() -> None:
    assert memory_brief(PROMPT, CallerMemory(caller=CALLER), 500) == NEW_CALLER


def test_the_brief_names_the_topic_and_the_turns_oldest_first() -> None:
    brief = memory_brief(PROMPT, _memory("Where is my order 4417?", "It ships today."), 500)

    assert 'Last time they said: "my order 4417"' in brief
    assert brief.endswith("Caller: Where is my order 4417?\nYou: It ships today.")


def test_the_brief_never_exceeds_its_bound_and_keeps_the_newest_turns() -> None:
    memory = _memory(*(f"line {i} " + "x" * 40 for i in range(50)))

    brief = memory_brief(PROMPT, memory, 400)

    assert len(brief) <= 400
    assert "line 49" in brief
    assert "line 0 " not in brief


def test_a_tiny_bound_still_holds() -> None:
    assert len(memory_brief(PROMPT, _memory("a" * 500), 100)) <= 100


def test_the_brief_carries_the_rolling_summary_and_profile() -> None:
    memory = replace(
        _memory("Where is my order 4417?"),
        summary="Order 4417 is late; a refund was promised.",
        profile={"name": "Dana"},
    )

    brief = memory_brief(PROMPT, memory, 1500)

    assert "Name: Dana" in brief
    assert "a refund was promised" in brief


def test_calls_that_never_hung_up_are_counted_with_the_archived_ones_the_brief_lists() -> None:
    archived = _memory("Where is my order 4417?", "It ships today.")
    unended = tuple(
        replace(archived.recent[0], seq=10 + n, call_id=f"never-hung-up-{n}", text=f"Hello from call {n}.")
        for n in range(3)
    )
    memory = replace(archived, recent=(*archived.recent, *unended))  # call_count 1: only c-1 was archived

    brief = memory_brief(PROMPT, memory, 4000)

    assert "This caller has called 4 time(s) before." in brief
    assert all(f"Hello from call {n}." in brief for n in range(3))
    assert "Where is my order 4417?" in brief
