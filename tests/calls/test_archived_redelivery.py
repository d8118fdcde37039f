"""A redelivered speech event of a call that ended (or is being archived) gets its answer, not a 409."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.outage import Outage, through
from support.phone import Phone, said
from support.waiting import eventually

CALLER = "+14155551234"
RACES = 150


def speech(call_id: str, text: str, event_id: str) -> dict[str, Any]:
    return {
        "type": "call.speech_recognized",
        "call_id": call_id,
        "from": CALLER,
        "speech": text,
        "event_id": event_id,
    }


async def test_a_redelivery_while_the_call_waits_for_the_archive_gets_its_stored_answer(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(through(settings, postgres, background_tasks=False)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        event = speech(call_id, "Where is my parcel?", "ev-1")
        first = await phone.send(event)
        await postgres.cut()
        hangup = await phone.hang_up(call_id)

        again = await phone.send(event)

    assert hangup == {"status": "archive_pending"}
    assert (again.status_code, again.json()) == (200, first.json())


async def test_a_redelivery_racing_its_calls_hangup_always_gets_its_stored_answer(
    phone: Phone, llm: FakeLLM
) -> None:
    refused = []
    for n in range(RACES):
        call_id, _ = await phone.ring(f"race-{n}")
        event = speech(call_id, f"Question {n}?", f"ev-{n}")
        answer = said((await phone.send(event)).json())
        _, again = await asyncio.gather(phone.hang_up(call_id), phone.send(event))
        if again.status_code != 200 or said(again.json()) != answer:
            refused.append((again.status_code, again.text))

    print(f"{len(refused)} of {RACES} redeliveries racing the hangup did not get their answer")
    assert refused == []


async def test_a_redelivery_of_a_turn_whose_call_ended_while_the_llm_answered_is_acknowledged(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    llm.delay_s = 1.0
    async with running(settings) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        event = speech(call_id, "Can you check my refund?", "ev-slow")
        first = asyncio.create_task(phone.send(event))

        async def asked() -> bool:
            return bool(llm.requests)

        await eventually(asked)
        await phone.hang_up(call_id)  # the call ends before its answer is ready
        again = await phone.send(event)
        await first

    assert (again.status_code, again.json()) == (200, {"status": "already_archived"})
    rows = await sql("SELECT role, text FROM turns ORDER BY seq")
    assert [r.text for r in rows if r.role == "caller"] == ["Can you check my refund?"]


async def test_a_redelivered_turn_of_a_call_the_sweeper_archived_gets_its_stored_answer(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    sweeping = settings.model_copy(update={"idle_call_s": 1.5, "sweep_interval_s": 0.05})
    async with running(sweeping) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        event = speech(call_id, "Where is my parcel?", "ev-swept")
        first = await phone.send(event)

        async def swept() -> bool:
            return bool(await sql("SELECT * FROM calls WHERE end_reason = 'idle_timeout'"))

        await eventually(swept)
        again = await phone.send(event)

    assert (again.status_code, again.json()) == (200, first.json())


async def test_a_new_speech_event_of_an_archived_call_is_still_refused_with_409(phone: Phone) -> None:
    call_id, _ = await phone.ring()
    await phone.send(speech(call_id, "Hello?", "ev-a"))
    await phone.hang_up(call_id)

    late = await phone.send(speech(call_id, "Are you there?", "ev-b"))

    assert (late.status_code, late.json()["error"]) == (409, "call_already_ended")
