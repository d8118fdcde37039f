"""Caller trust over the seed webhook: whole calls replayed under each disclosure policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from support.llm import FakeLLM
from support.phone import Phone
from support.trust import FACT, GENUINE, SPOOFED


@pytest.fixture
def caller(guarded: httpx.AsyncClient) -> Phone:
    return Phone(guarded, caller=GENUINE)


@pytest.fixture
def stranger(guarded: httpx.AsyncClient) -> Phone:
    """A number that has never called."""
    return Phone(guarded, caller="+14155550199")


async def test_an_attested_caller_is_remembered(caller: Phone, llm: FakeLLM) -> None:
    await caller.call(FACT, verified=True)

    call_id, greeting = await caller.ring(verified=True)
    await caller.say(call_id, "What did I tell you last time?")

    assert "88213" in greeting
    assert FACT in llm.prompt_text()


async def test_a_spoof_of_the_number_hears_exactly_what_a_new_caller_hears(
    caller: Phone, stranger: Phone
) -> None:
    await caller.call(FACT, verified=True)

    _, spoof_greeting = await caller.ring()
    _, new_caller_greeting = await stranger.ring()

    assert spoof_greeting == new_caller_greeting


async def test_a_spoof_s_prompt_holds_nothing_from_earlier_calls(caller: Phone, llm: FakeLLM) -> None:
    await caller.call(FACT, verified=True)

    call_id, _ = await caller.ring()
    await caller.say(call_id, "Where is my parcel 88213? What did I tell you last time?")

    prompt = llm.prompt_text()
    assert "never arrived" not in prompt
    assert "Where is my parcel 88213?" in prompt  # what this call said is its own context


async def test_what_a_spoof_says_stays_out_of_the_next_verified_call(caller: Phone, llm: FakeLLM) -> None:
    await caller.call(FACT, verified=True)
    await caller.call(SPOOFED)

    call_id, greeting = await caller.ring(verified=True)
    await caller.say(call_id, "The refund to my account, where is it?")

    assert "99999" not in greeting
    assert "99999" not in llm.prompt_text()
    assert FACT in llm.prompt_text()


async def test_a_spoofed_call_is_archived_under_the_number_marked_unverified(
    caller: Phone, sql: Callable[..., Any]
) -> None:
    await caller.call(FACT, verified=True)
    spoof_id, _ = await caller.call(SPOOFED)

    rows = await sql("SELECT external_id, caller_verified FROM calls ORDER BY started_at")
    callers = await sql("SELECT count(*), max(call_count) FROM callers")

    assert [(r.external_id == spoof_id, r.caller_verified) for r in rows] == [(False, True), (True, False)]
    assert tuple(callers[0]) == (1, 1)  # one caller; the spoof is not counted as one of their calls


async def test_a_call_verified_during_the_call_reads_the_memory_from_its_next_turn(
    caller: Phone, llm: FakeLLM
) -> None:
    await caller.call(FACT, verified=True)
    call_id, _ = await caller.ring()
    await caller.say(call_id, "Hello, it is me again.")
    assert "never arrived" not in llm.prompt_text()

    assert await caller.verify(call_id) == "verified"
    await caller.say(call_id, "What did I tell you last time?")

    assert FACT in llm.prompt_text()


async def test_turns_said_before_the_check_count_as_the_verified_caller_s(
    caller: Phone, llm: FakeLLM
) -> None:
    call_id, _ = await caller.ring()
    await caller.say(call_id, "My dishwasher 5521 leaks water.")
    await caller.verify(call_id)
    await caller.hang_up(call_id)

    next_id, greeting = await caller.ring(verified=True)
    await caller.say(next_id, "Any news?")

    assert "dishwasher" in greeting
    assert "My dishwasher 5521 leaks water." in llm.prompt_text()


async def test_verifying_a_call_twice_says_it_already_was(caller: Phone) -> None:
    call_id, _ = await caller.ring()

    assert await caller.verify(call_id) == "verified"
    assert await caller.verify(call_id) == "already_verified"


async def test_a_verified_ringing_is_verified_already(caller: Phone) -> None:
    call_id, _ = await caller.ring(verified=True)

    assert await caller.verify(call_id) == "already_verified"


async def test_verifying_a_call_that_never_rang_is_refused(caller: Phone) -> None:
    response = await caller.send({"type": "call.caller_verified", "call_id": "nope", "from": caller.caller})

    assert response.status_code == 409
    assert response.json()["error"] == "call_not_started"


async def test_under_the_open_policy_an_unattested_call_reaches_the_memory(
    phone: Phone, llm: FakeLLM
) -> None:
    await phone.call(FACT, verified=True)

    call_id, greeting = await phone.ring()
    await phone.say(call_id, "Any news?")

    assert "88213" in greeting
    assert FACT in llm.prompt_text()
