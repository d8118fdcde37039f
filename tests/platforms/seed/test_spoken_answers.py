"""What a caller hears through the seed webhook when the model writes for a screen: sayable sentences,
recorded as heard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callmemory.settings import Settings
from support.app import running
from support.llm import MISBEHAVIOURS, FakeLLM, Misbehaviour
from support.phone import Phone


@pytest.mark.parametrize("model", MISBEHAVIOURS.values(), ids=MISBEHAVIOURS.keys())
async def test_a_misbehaving_models_answer_is_talked_as_sayable_sentences_and_recorded_as_heard(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any], model: Misbehaviour
) -> None:
    must_hear = model.on(llm)
    call_id, _ = await phone.ring()

    heard = await phone.say(call_id, "Where is my order?")
    await phone.hang_up(call_id)

    assert heard == must_hear
    assert [r.text for r in await sql("SELECT text FROM turns WHERE role = 'bot' ORDER BY seq")][1:] == [
        heard
    ]


async def test_an_answer_with_nothing_sayable_in_it_is_the_fallback_line_flagged_as_such(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    Misbehaviour("Dear [Customer Name],\n\nBest regards,\n[Your Name]", settings.fallback_line).on(llm)
    call_id, _ = await phone.ring()

    heard = await phone.say(call_id, "Where is my order?")
    await phone.hang_up(call_id)

    assert heard == settings.fallback_line
    assert [tuple(r) for r in await sql("SELECT text, fallback FROM turns WHERE role = 'bot'")][1:] == [
        (settings.fallback_line, True)
    ]


async def test_the_spoken_length_cap_is_a_setting(settings: Settings, llm: FakeLLM) -> None:
    llm.reply = lambda messages: "Your parcel left today. It arrives on Friday. The driver will call first."
    async with running(settings.model_copy(update={"answer_max_chars": 50})) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        heard = await phone.say(call_id, "Where is my parcel?")

    assert heard == "Your parcel left today. It arrives on Friday."
