"""Platforms redeliver webhooks: every event delivered two or three times gives the result of one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.phone import Phone, said
from support.waiting import eventually

CALLER = "+14155551234"


def speech(call_id: str, text: str, **identity: Any) -> dict[str, Any]:
    return {"type": "call.speech_recognized", "call_id": call_id, "from": CALLER, "speech": text, **identity}


async def _caller_turns(sql: Callable[..., Any]) -> list[str]:
    return [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller' ORDER BY seq")]


async def test_a_redelivered_speech_event_gets_the_same_answer_without_a_second_llm_request(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.ring()
    event = speech(call_id, "Where is my parcel?", event_id="ev-1")

    first = await phone.send(event)
    again = await phone.send(event)
    await phone.hang_up(call_id)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(llm.requests) == 1
    assert await _caller_turns(sql) == ["Where is my parcel?"]


async def test_interleaved_redeliveries_while_the_llm_thinks_make_one_request_and_one_answer(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    llm.delay_s = 0.3
    call_id, _ = await phone.ring()
    event = speech(call_id, "Can you check my refund?", event_id="ev-9")

    answers = await asyncio.gather(*(phone.send(event) for _ in range(3)))
    await phone.hang_up(call_id)

    assert {r.status_code for r in answers} == {200}
    assert len({said(r.json()) for r in answers}) == 1
    assert len(llm.requests) == 1
    assert len(await sql("SELECT * FROM turns")) == 3  # greeting, the caller, one answer


async def test_without_an_event_id_the_calls_sequence_number_identifies_a_redelivery(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.ring()

    await phone.send(speech(call_id, "Yes.", sequence=1))
    await phone.send(speech(call_id, "Yes.", sequence=1))
    await phone.send(speech(call_id, "Yes.", sequence=2))
    await phone.hang_up(call_id)

    assert len(llm.requests) == 2
    assert await _caller_turns(sql) == ["Yes.", "Yes."]


async def test_a_redelivered_ringing_hears_the_same_greeting_and_is_recorded_once(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    call_id, greeting = await phone.ring("c-ring-twice")
    _, again = await phone.ring("c-ring-twice")
    await phone.hang_up(call_id)

    assert again == greeting
    assert [r.text for r in await sql("SELECT text FROM turns")] == [greeting]


async def test_a_speech_event_redelivered_after_the_hangup_still_gets_its_answer(phone: Phone) -> None:
    call_id, _ = await phone.ring()
    event = speech(call_id, "Bye for now.", event_id="ev-last")
    first = await phone.send(event)
    await phone.hang_up(call_id)

    late = await phone.send(event)

    assert (late.status_code, late.json()) == (200, first.json())


async def test_a_whole_call_delivered_three_times_interleaved_is_archived_as_once(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    llm.delay_s = 0.05
    call_id = "c-thrice"
    ring = {"type": "call.ringing", "call_id": call_id, "from": CALLER, "to": phone.bot}
    lines = ["I moved house last week.", "Please update my address.", "Thanks."]

    await asyncio.gather(*(phone.send(ring) for _ in range(3)))
    for n, line in enumerate(lines):
        await asyncio.gather(*(phone.send(speech(call_id, line, event_id=f"e{n}")) for _ in range(3)))
    hangups = await asyncio.gather(
        *(phone.send({"type": "call.hangup", "call_id": call_id, "from": CALLER}) for _ in range(3))
    )

    assert sorted(h.json()["status"] for h in hangups) == ["already_archived", "already_archived", "archived"]
    assert len(llm.requests) == len(lines)
    rows = await sql("SELECT seq, role, text FROM turns ORDER BY seq")
    assert [r.role for r in rows] == ["bot", "caller", "bot", "caller", "bot", "caller", "bot"]
    assert [r.text for r in rows if r.role == "caller"] == lines
    assert [r.call_count for r in await sql("SELECT call_count FROM callers")] == [1]


async def test_a_redelivery_whose_first_delivery_died_gets_the_fallback_line_and_so_do_later_ones(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    llm.delay_s = 5
    async with running(settings.model_copy(update={"llm_timeout_s": 0.5})) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        event = speech(call_id, "Hello, anyone?", event_id="ev-dies")
        first = asyncio.create_task(phone.send(event))

        async def waiting_on_the_llm() -> bool:  # the first delivery has recorded the caller's turn
            return bool(llm.requests)

        await eventually(waiting_on_the_llm)
        first.cancel()  # the instance handling it dies
        with contextlib.suppress(asyncio.CancelledError):
            await first

        retried = await phone.send(event)
        again = await phone.send(event)
        await phone.hang_up(call_id)

    assert said(retried.json()) == said(again.json()) == settings.fallback_line
    assert len(llm.requests) == 1
    rows = await sql("SELECT role, text, fallback FROM turns ORDER BY seq")
    assert [(r.role, r.fallback) for r in rows] == [("bot", False), ("caller", False), ("bot", True)]


async def test_an_instance_that_saw_the_call_live_replays_its_answer_after_another_archived_it(
    settings: Settings, llm: FakeLLM
) -> None:
    async with running(settings) as one, running(settings) as two:
        call_id, _ = await Phone(one).ring()
        event = speech(call_id, "Where is my parcel?", event_id="ev-1")
        first = await Phone(one).send(event)
        await Phone(two).hang_up(call_id)

        again = await Phone(one).send(event)
        new = await Phone(one).send(speech(call_id, "Hello?", event_id="ev-2"))

    assert (again.status_code, again.json()) == (200, first.json())
    assert (new.status_code, new.json()["error"]) == (409, "call_already_ended")
    assert len(llm.requests) == 1
