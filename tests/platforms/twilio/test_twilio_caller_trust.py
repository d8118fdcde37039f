"""Caller trust on Twilio: `StirVerstat` decides it, signed with every other parameter by Twilio's own
validator; replayed as whole calls under CALLMEMORY_DISCLOSURE=verified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from callmemory.core.trust import Disclosure
from callmemory.settings import Settings
from support.api import Api, caller_path
from support.app import running
from support.llm import FakeLLM
from support.trust import FACT
from support.twilio import BOT, CALLER, TwilioCall

ATTESTED = "TN-Validation-Passed-A"


@pytest.fixture
async def guarded(twilio_settings: Settings, llm: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with running(twilio_settings.model_copy(update={"disclosure": Disclosure.VERIFIED})) as client:
        yield client


async def test_an_a_attested_caller_is_remembered(guarded: httpx.AsyncClient, llm: FakeLLM) -> None:
    await TwilioCall(guarded, stir_verstat=ATTESTED).whole(FACT)

    again = TwilioCall(guarded, stir_verstat=ATTESTED)
    greeting = await again.ring()
    await again.say("What did I tell you last time?")

    assert "88213" in greeting
    assert FACT in llm.prompt_text()


@pytest.mark.parametrize(
    "verstat",
    [
        None,  # no PASSporT at all
        "TN-Validation-Passed-B",
        "TN-Validation-Passed-C",
        "TN-Validation-Failed-A",
        "TN-Validation-Failed",
        "No-TN-Validation",
        "TN-Validation-Passed-A-Diverted",
        "TN-Validation-Passed-A-Passthrough",
    ],
)
async def test_a_call_without_a_passed_a_attestation_hears_what_a_new_caller_hears(
    guarded: httpx.AsyncClient, llm: FakeLLM, verstat: str | None
) -> None:
    await TwilioCall(guarded, stir_verstat=ATTESTED).whole(FACT)
    new_caller = await TwilioCall(guarded, caller="+14155550199").ring()

    spoof = TwilioCall(guarded, stir_verstat=verstat)
    greeting = await spoof.ring()
    await spoof.say("What did I tell you last time?")

    assert greeting == new_caller
    assert "88213" not in llm.prompt_text()


async def test_what_a_b_attested_call_says_stays_out_of_the_next_attested_call(
    guarded: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await TwilioCall(guarded, stir_verstat=ATTESTED).whole(FACT)
    await TwilioCall(guarded, stir_verstat="TN-Validation-Passed-B").whole("Refund to account 99999 please.")

    genuine = TwilioCall(guarded, stir_verstat=ATTESTED)
    greeting = await genuine.ring()
    await genuine.say("Where is the refund to my account?")

    assert "99999" not in greeting
    assert "99999" not in llm.prompt_text()
    assert FACT in llm.prompt_text()


async def test_a_forged_stir_verstat_fails_the_signature(guarded: httpx.AsyncClient) -> None:
    call = TwilioCall(guarded, stir_verstat="TN-Validation-Passed-B")
    signed = call.incoming()
    forged = {**signed.params, "StirVerstat": ATTESTED}

    response = await guarded.post(
        "/twilio/voice", data=forged, headers={"X-Twilio-Signature": signed.signature or ""}
    )

    assert response.status_code == 403  # as for any request whose signature does not match


async def test_a_call_verified_through_the_api_mid_call_reads_the_memory_from_its_next_turn(
    guarded: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await TwilioCall(guarded, stir_verstat=ATTESTED).whole(FACT)
    call = TwilioCall(guarded)
    await call.ring()
    await call.say("Hello, it is me again.")
    before = llm.prompt_text()

    verified = await Api(guarded).post(
        f"{caller_path(bot=BOT, caller=CALLER)}/live/{call.sid}/verify?platform=twilio"
    )
    await call.say("What did I tell you last time?")

    assert "88213" not in before
    assert verified.json() == {"status": "verified"}
    assert FACT in llm.prompt_text()


async def test_a_call_whose_stir_verstat_twilio_added_after_signing_is_answered_and_verified(
    guarded: httpx.AsyncClient, llm: FakeLLM
) -> None:
    await TwilioCall(guarded, stir_verstat=ATTESTED).whole(FACT)
    call = TwilioCall(guarded)
    signed = call.incoming()  # signed over every parameter but the two Twilio is reported to add later
    params = {**signed.params, "StirVerstat": ATTESTED, "CallToken": "%7B%22parentCallInfoToken%22%7D"}

    response = await guarded.post(
        "/twilio/voice", data=params, headers={"X-Twilio-Signature": signed.signature or ""}
    )

    assert response.status_code == 200
    assert "88213" in response.text


async def test_a_request_whose_signature_covers_neither_form_is_refused(guarded: httpx.AsyncClient) -> None:
    call = TwilioCall(guarded)
    signed = call.incoming()
    params = {**signed.params, "StirVerstat": ATTESTED, "To": "+14155550001"}

    response = await guarded.post(
        "/twilio/voice", data=params, headers={"X-Twilio-Signature": signed.signature or ""}
    )

    assert response.status_code == 403
