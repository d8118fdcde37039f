"""Postgres slow or down: a caller's turn is answered without search results, within its deadline; and a
call not yet archived is still in the prompt, from Redis."""

from __future__ import annotations

import time

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.outage import Outage, through
from support.phone import Phone

SEARCH_TIMEOUT_S = 0.2
SECTION = "From earlier calls with this caller, what matches"


async def _ask_about_the_dishwasher(settings: Settings, llm: FakeLLM, postgres: Outage, fail: str) -> float:
    """Seconds the turn took with Postgres failing as `fail` says, after a call with the fact archived."""

    async with running(through(settings, postgres, search_timeout_s=SEARCH_TIMEOUT_S)) as http:
        phone = Phone(http)
        await phone.call("My dishwasher serial is DW-4471.")
        for n in range(12):  # the fact leaves the verbatim window
            await phone.call(f"Call {n}: the weather is nice today.")
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Is the dishwasher serial on file?")
        assert "DW-4471" in llm.prompt_text()  # found by the search while Postgres answers
        await (postgres.hang() if fail == "hang" else postgres.cut())
        started = time.perf_counter()
        answer = await phone.say(call_id, "What was the serial of the dishwasher?")
        took = time.perf_counter() - started
        await postgres.restore()
    assert answer == "You said: What was the serial of the dishwasher?"
    return took


async def test_with_postgres_hanging_the_turn_is_answered_without_search_results_at_the_deadline(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    took = await _ask_about_the_dishwasher(settings, llm, postgres, "hang")

    assert SECTION not in llm.prompt_text()
    assert SEARCH_TIMEOUT_S <= took < SEARCH_TIMEOUT_S + 1.0


async def test_with_postgres_down_the_turn_is_answered_without_search_results(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    await _ask_about_the_dishwasher(settings, llm, postgres, "cut")

    assert SECTION not in llm.prompt_text()


async def test_a_call_still_waiting_for_the_archive_is_in_the_next_calls_prompt(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:

    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        await postgres.cut()
        call_id, _ = await phone.ring()
        await phone.say(call_id, "My dishwasher serial is DW-4471.")
        assert await phone.hang_up(call_id) == {"status": "archive_pending"}
        await postgres.restore()  # back, but the call is not archived until the flusher runs

        call_id, _ = await phone.ring()
        await phone.say(call_id, "What was the serial of the dishwasher?")

    assert "DW-4471" in llm.prompt_text()
