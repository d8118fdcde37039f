"""What a Twilio caller hears when the model writes for a screen: the `<Say>` of the next turn's gather
is sayable sentences."""

from __future__ import annotations

import httpx
import pytest

from support.llm import MISBEHAVIOURS, FakeLLM, Misbehaviour
from support.twilio import answered


@pytest.mark.parametrize("model", MISBEHAVIOURS.values(), ids=MISBEHAVIOURS.keys())
async def test_a_misbehaving_models_answer_is_said_as_sayable_sentences(
    http: httpx.AsyncClient, llm: FakeLLM, model: Misbehaviour
) -> None:
    must_hear = model.on(llm)
    call = await answered(http)

    answer = await call.send(call.speech("Where is my order?"))

    assert answer.said == must_hear
