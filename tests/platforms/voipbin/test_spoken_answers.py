"""What a VoIPBin caller hears when our model writes for a screen: the talk sent into the call is sayable
sentences, and the archive keeps what was talked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support.llm import MISBEHAVIOURS, FakeLLM, Misbehaviour
from support.voipbin import FakeVoipbinApi, ScriptedCall, Voipbin, archived


@pytest.mark.parametrize("model", MISBEHAVIOURS.values(), ids=MISBEHAVIOURS.keys())
async def test_a_misbehaving_models_answer_is_talked_into_the_call_as_sayable_sentences(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, llm: FakeLLM, sql: Callable[..., Any], model: Misbehaviour
) -> None:
    must_hear = model.on(llm)
    call = ScriptedCall()
    await voipbin.actions(call)
    await voipbin.deliver_all([call.created(), call.progressing(), call.transcribe_created()])

    await voipbin.deliver_all([call.transcript("Where is my order?"), call.hangup()])

    assert [talk["text"] for talk in voipbin_api.talks] == [must_hear]
    assert (await archived(sql, call))[-1] == ("bot", must_hear)
