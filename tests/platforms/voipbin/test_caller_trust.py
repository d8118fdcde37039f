"""Caller trust on VoIPBin, which vouches for no caller: under a bot's own `verified` disclosure (its
entry in CALLMEMORY_VOIPBIN_BOTS) every call starts as a stranger's, in both modes, until the bot
verifies the caller through /v1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callmemory.conversation.brief import NEW_CALLER
from callmemory.core.trust import Disclosure
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import Settings
from support.api import Api, caller_path
from support.app import running
from support.llm import FakeLLM
from support.trust import FACT
from support.voipbin import (
    AI_ID,
    CALLER,
    FETCH_TOKEN,
    MANAGED_BOT,
    OWN_LLM_BOT,
    FakeVoipbinApi,
    ScriptedCall,
    Voipbin,
    brief_of,
    greeting_of,
)

STRANGER = "+15551230000"


@pytest.fixture
async def guarded_voipbin(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi
) -> AsyncIterator[Voipbin]:
    """Both bots under their own `verified` disclosure; CALLMEMORY_DISCLOSURE stays open."""
    bots = {
        MANAGED_BOT: VoipbinBot(mode="managed_ai", ai_id=AI_ID, disclosure=Disclosure.VERIFIED),
        OWN_LLM_BOT: VoipbinBot(disclosure=Disclosure.VERIFIED),
    }
    async with running(voipbin_settings.model_copy(update={"voipbin_bots": bots})) as http:
        yield Voipbin(http, voipbin_api)


async def _verified_managed_call(voipbin: Voipbin) -> None:
    """A managed-AI call whose caller the bot verified (through /v1), in which they tell FACT."""
    call = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(call)
    verified = await Api(voipbin.http).post(
        f"{caller_path(bot=MANAGED_BOT, caller=CALLER)}/live/{call.call_id}/verify?platform=voipbin"
    )
    assert verified.json() == {"status": "verified"}
    await voipbin.deliver_all([call.created(), call.ai_message("user", FACT), call.hangup()])


async def test_a_returning_caller_s_managed_ai_call_is_briefed_and_greeted_as_a_stranger(
    guarded_voipbin: Voipbin,
) -> None:
    await _verified_managed_call(guarded_voipbin)

    returning = await guarded_voipbin.actions(ScriptedCall(bot=MANAGED_BOT))
    stranger = await guarded_voipbin.actions(ScriptedCall(bot=MANAGED_BOT, caller=STRANGER))

    assert brief_of(returning) == brief_of(stranger) == NEW_CALLER
    assert greeting_of(returning) == greeting_of(stranger)


async def test_an_own_llm_call_s_prompt_holds_nothing_of_earlier_calls_until_verified(
    guarded_voipbin: Voipbin, llm: FakeLLM
) -> None:
    await _verified_managed_call(guarded_voipbin)  # another bot: its memory is not this one's
    first = ScriptedCall()
    await guarded_voipbin.actions(first)
    await Api(guarded_voipbin.http).post(
        f"{caller_path(bot=OWN_LLM_BOT, caller=CALLER)}/live/{first.call_id}/verify?platform=voipbin"
    )
    await guarded_voipbin.deliver_all(
        [first.created(), first.transcribe_created(), first.transcript(FACT), first.hangup()]
    )

    second = ScriptedCall()
    await guarded_voipbin.actions(second)
    await guarded_voipbin.deliver_all(
        [second.created(), second.transcribe_created(), second.transcript("Any news on it?")]
    )
    before = llm.prompt_text()
    await Api(guarded_voipbin.http).post(
        f"{caller_path(bot=OWN_LLM_BOT, caller=CALLER)}/live/{second.call_id}/verify?platform=voipbin"
    )
    await guarded_voipbin.deliver_all([second.transcript("What did I tell you last time?")])

    assert "88213" not in before
    assert FACT in llm.prompt_text()


async def test_a_bot_without_its_own_disclosure_follows_the_global_one(
    voipbin: Voipbin, llm: FakeLLM
) -> None:
    first = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(first)
    await voipbin.deliver_all([first.created(), first.ai_message("user", FACT), first.hangup()])

    actions = await voipbin.actions(ScriptedCall(bot=MANAGED_BOT))

    assert "88213" in brief_of(actions)


async def test_a_fetch_that_names_no_call_greets_and_briefs_a_returning_caller_as_a_stranger(
    guarded_voipbin: Voipbin,
) -> None:
    await _verified_managed_call(guarded_voipbin)
    url = f"/voipbin/fetch/{FETCH_TOKEN}/{MANAGED_BOT}/{CALLER}?direction=incoming"

    response = await guarded_voipbin.http.post(url, json={})
    stranger = await guarded_voipbin.actions(ScriptedCall(bot=MANAGED_BOT, caller=STRANGER))

    assert response.status_code == 200
    assert brief_of(response.json()) == NEW_CALLER
    assert greeting_of(response.json()) == greeting_of(stranger)
