"""A caller who withholds their number is answered, but shares no memory with anyone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.twilio import TwilioCall

Rows = Callable[..., Any]

WITHHELD = [
    pytest.param("anonymous", id="anonymous"),
    pytest.param("+266696687", id="ANONYMOUS on a keypad"),
    pytest.param("+7378742833", id="RESTRICTED on a keypad"),
]


@pytest.mark.parametrize("caller", WITHHELD)
async def test_a_withheld_caller_is_greeted_as_new_and_answered(
    http: httpx.AsyncClient, llm: FakeLLM, caller: str
) -> None:
    call = TwilioCall(http, caller=caller)

    assert await call.ring() == "Hello! How can I help you today?"
    assert await call.say("My order 4417 never arrived.") == "You said: My order 4417 never arrived."
    assert await call.say("Can you check it?") == "You said: Can you check it?"
    assert "My order 4417 never arrived." in str(llm.requests[-1])  # the call's own turns are its context


@pytest.mark.parametrize("caller", WITHHELD)
async def test_a_second_withheld_call_is_greeted_as_new(
    http: httpx.AsyncClient, llm: FakeLLM, caller: str
) -> None:
    await TwilioCall(http, caller=caller).whole("My order 4417 never arrived.")

    assert await TwilioCall(http, caller=caller).ring() == "Hello! How can I help you today?"


async def test_withheld_calls_are_archived_each_under_a_caller_of_its_own_and_no_number(
    twilio_settings: Settings, llm: FakeLLM, sql: Rows
) -> None:
    keeping_numbers = twilio_settings.model_copy(update={"store_raw_numbers": True})
    async with running(keeping_numbers) as http:
        await TwilioCall(http, caller="anonymous").whole("First secret.")
        await TwilioCall(http, caller="anonymous").whole("Second secret.")
        await TwilioCall(http, caller="+266696687").whole("Third secret.")

    callers = await sql("SELECT call_count, caller_number FROM callers")
    assert [(r.call_count, r.caller_number) for r in callers] == [(1, None)] * 3
