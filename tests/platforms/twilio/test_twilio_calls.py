"""Whole Twilio calls: TwiML in the shape Twilio runs, memory shared with the other platforms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from support.llm import FakeLLM
from support.phone import Phone
from support.twilio import BOT, CALLER, PUBLIC_URL, TwilioCall, answered, deliver

Rows = Callable[..., Any]


async def test_an_incoming_call_hears_the_greeting_inside_a_speech_gather_then_goodbye_and_hangup(
    http: httpx.AsyncClient,
) -> None:
    answer = await TwilioCall(http).send(TwilioCall(http).incoming())

    assert answer.content_type.startswith("text/xml")
    assert [child.tag for child in answer.root] == ["Gather", "Say", "Hangup"]
    assert answer.gather.attrib == {
        "input": "speech",
        "action": f"{PUBLIC_URL}/twilio/gather?turn=1",
        "method": "POST",
        "speechTimeout": "auto",
        "language": "en-US",
    }
    assert answer.said == "Hello! How can I help you today?"
    assert answer.root[1].text == "Sorry, I didn't catch that. Goodbye."


async def test_each_speech_result_is_answered_inside_the_gather_of_the_next_turn(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    call = await answered(http)

    first = await call.send(call.speech("My order 4417 never arrived."))
    second = await call.send(call.speech("It was a blue kettle."))

    assert first.said == "You said: My order 4417 never arrived."
    assert first.gather.get("action") == f"{PUBLIC_URL}/twilio/gather?turn=2"
    assert second.said == "You said: It was a blue kettle."
    assert second.gather.get("action") == f"{PUBLIC_URL}/twilio/gather?turn=3"


async def test_a_redelivered_incoming_call_hears_the_same_greeting_recorded_once(
    http: httpx.AsyncClient, sql: Rows
) -> None:
    call = TwilioCall(http)
    incoming = call.incoming()

    first = await deliver(http, incoming)
    again = await deliver(http, incoming)
    await call.hang_up()

    assert again.text == first.text
    assert [r.role for r in await sql("SELECT role FROM turns")] == ["bot"]


async def test_a_gather_action_without_speech_listens_again_for_the_same_turn(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    call = await answered(http)

    silence = await call.send(call.speech(""))

    assert silence.gather.get("action") == f"{PUBLIC_URL}/twilio/gather?turn=1"
    assert silence.said == ""
    assert llm.requests == []


async def test_a_returning_caller_is_greeted_with_their_last_topic(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await TwilioCall(http).whole("My order 4417 never arrived.")

    greeting = await TwilioCall(http).ring()

    assert "My order 4417 never arrived" in greeting


async def test_a_caller_first_heard_through_the_seed_webhook_is_remembered_on_twilio(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await Phone(http, caller=CALLER, bot=BOT).call("I want to cancel my subscription.")

    greeting = await TwilioCall(http, caller=CALLER, bot=BOT).ring()

    assert "I want to cancel my subscription" in greeting


async def test_a_redelivered_speech_result_is_recorded_once_and_answered_with_the_same_text(
    http: httpx.AsyncClient, llm: FakeLLM, sql: Rows
) -> None:
    call = await answered(http)
    result = call.speech("Where is my parcel?")

    first = await deliver(http, result)
    again = await deliver(http, result)
    await call.hang_up()

    assert again.status_code == 200
    assert again.text == first.text
    assert len(llm.requests) == 1
    caller_turns = await sql("SELECT text FROM turns WHERE role = 'caller'")
    assert [r.text for r in caller_turns] == ["Where is my parcel?"]


async def test_the_same_words_said_again_in_a_later_turn_are_a_new_turn(
    http: httpx.AsyncClient, llm: FakeLLM, sql: Rows
) -> None:
    call = await answered(http)

    await call.say("Hello?")
    await call.say("Hello?")
    await call.hang_up()

    assert len(llm.requests) == 2
    assert len(await sql("SELECT * FROM turns WHERE role = 'caller'")) == 2


async def test_the_status_callback_archives_the_call_once_however_often_it_comes(
    http: httpx.AsyncClient, llm: FakeLLM, sql: Rows
) -> None:
    call = await answered(http)
    await call.say("Please call me back tomorrow.")

    await call.hang_up()
    await call.hang_up()

    rows = await sql("SELECT platform, external_id, end_reason, turn_count FROM calls")
    assert [tuple(r) for r in rows] == [("twilio", call.sid, "completed", 3)]


async def test_a_progress_status_is_acknowledged_and_leaves_the_call_going(
    http: httpx.AsyncClient, llm: FakeLLM, sql: Rows
) -> None:
    call = await answered(http)

    await call.hang_up(status="in-progress")

    assert await sql("SELECT * FROM calls") == []
    assert await call.say("Still there?") == "You said: Still there?"
