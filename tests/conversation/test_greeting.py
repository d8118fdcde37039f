"""Greeting without waiting: prepared when a call is summarised, a template until then; never an LLM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callmemory.memory.greeting import Greetings
from callmemory.settings import Settings
from support.app import summarise_queued
from support.llm import FakeLLM
from support.phone import Phone

PREPARED = 'Welcome back! Is it still about "My router keeps dropping"?'


async def test_ringing_uses_the_prepared_greeting_and_makes_no_llm_request(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My router keeps dropping the connection.")
    await summarise_queued(settings)
    before = len(llm.requests)

    _, greeting = await phone.ring()

    assert greeting == PREPARED
    assert len(llm.requests) == before


async def test_the_prepared_greeting_is_stored_with_the_callers_memory(
    phone: Phone, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My router keeps dropping the connection.")
    await summarise_queued(settings)

    assert [r.next_greeting for r in await sql("SELECT next_greeting FROM callers")] == [PREPARED]


async def test_until_a_greeting_is_prepared_the_template_is_used(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My router keeps dropping the connection.")
    before = len(llm.requests)

    _, greeting = await phone.ring()

    assert greeting.startswith(
        'Welcome back! Last time you told me: "My router keeps dropping the connection"'
    )
    assert len(llm.requests) == before


async def test_a_newer_call_replaces_a_stale_prepared_greeting_with_the_template(
    phone: Phone, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My router keeps dropping the connection.")
    await summarise_queued(settings)
    await phone.call("I want to cancel my contract.")

    _, greeting = await phone.ring()

    assert "I want to cancel my contract" in greeting
    assert [r.next_greeting for r in await sql("SELECT next_greeting FROM callers")] == [None]


async def test_the_template_quotes_the_topic_without_the_callers_greeting_or_introduction(
    phone: Phone,
) -> None:
    await phone.call("Hello again, it's Maria Lopez. Any news on order 48213?")

    _, greeting = await phone.ring()

    assert greeting.startswith('Welcome back! Last time you told me: "Any news on order 48213".')


async def test_a_last_call_of_nothing_but_hello_again_gives_the_template_without_a_topic(
    phone: Phone,
) -> None:
    await phone.call("Hello again.")

    _, greeting = await phone.ring()

    assert greeting == Greetings(new="", returning="").returning_no_topic
