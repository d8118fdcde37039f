"""The /v1 reads under CALLMEMORY_DISCLOSURE=verified: the integrator reads what verified calls built,
never what an unverified call said; export and erasure cover everything, marked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from callmemory.settings import Settings
from support.api import BOT_A, CALLER, Api, caller_path
from support.app import summarise_queued
from support.phone import Phone
from support.trust import FACT, SPOOF_WORD, SPOOFED, genuine_then_spoofed


@pytest.fixture
def api(guarded: httpx.AsyncClient) -> Api:
    return Api(guarded)


@pytest.fixture
def phone(guarded: httpx.AsyncClient) -> Phone:
    return Phone(guarded, caller=CALLER, bot=BOT_A)


async def test_the_context_holds_the_verified_calls_and_not_the_spoof(phone: Phone, api: Api) -> None:
    await genuine_then_spoofed(phone)

    context = (await api.get(f"{caller_path()}/context", q="the refund to my account")).json()

    text = str(context)
    assert FACT in text
    assert SPOOF_WORD not in text
    assert all(SPOOF_WORD not in hit["text"] for hit in context["search"])


async def test_the_brief_holds_the_verified_calls_and_not_the_spoof(
    phone: Phone, api: Api, guarded_settings: Settings
) -> None:
    await genuine_then_spoofed(phone)
    await summarise_queued(guarded_settings)

    brief = (await api.get(f"{caller_path()}/brief")).json()

    assert brief["call_count"] == 1
    assert "88213" in brief["brief"]
    assert SPOOF_WORD not in str(brief)


async def test_the_search_finds_no_word_the_spoof_said(phone: Phone, api: Api) -> None:
    await genuine_then_spoofed(phone)

    found = (await api.get(f"{caller_path()}/search", q="refund account 99999")).json()

    assert found["results"] == []


async def test_the_search_still_finds_what_the_verified_call_said(phone: Phone, api: Api) -> None:
    await genuine_then_spoofed(phone)

    found = (await api.get(f"{caller_path()}/search", q="parcel 88213")).json()

    assert [hit["text"] for hit in found["results"]][:1] == [FACT]


async def test_a_context_tied_to_a_live_unverified_call_holds_that_call_alone(phone: Phone, api: Api) -> None:
    await phone.call(FACT, verified=True)
    live = f"{caller_path()}/live/conv-1"
    await api.post(f"{live}/turns", {"role": "caller", "text": "Did my parcel come?"})

    context = (await api.get(f"{caller_path()}/context", call_id="conv-1")).json()

    assert "88213" not in str(context)
    assert context["messages"][1:] == [{"role": "user", "content": "Did my parcel come?"}]


async def test_a_live_call_verified_through_the_api_reads_the_memory(phone: Phone, api: Api) -> None:
    await phone.call(FACT, verified=True)
    live = f"{caller_path()}/live/conv-1"
    await api.post(f"{live}/turns", {"role": "caller", "text": "Did my parcel come?"})

    verified = await api.post(f"{live}/verify")
    context = (await api.get(f"{caller_path()}/context", call_id="conv-1")).json()

    assert verified.json() == {"status": "verified"}
    assert FACT in str(context)


async def test_a_webhook_call_is_verified_through_the_api_by_its_platform(phone: Phone, api: Api) -> None:
    call_id, _ = await phone.ring()

    verified = await api.post(f"{caller_path()}/live/{call_id}/verify?platform=seed")
    again = await phone.verify(call_id)

    assert verified.json() == {"status": "verified"}
    assert again == "already_verified"


async def test_verifying_another_caller_s_call_is_refused(phone: Phone, api: Api) -> None:
    call_id, _ = await phone.ring()

    response = await api.post(f"{caller_path(caller='+14155550199')}/live/{call_id}/verify?platform=seed")

    assert (response.status_code, response.json()["error"]) == (409, "caller_mismatch")


async def test_the_export_covers_the_spoofed_call_marked_unverified(phone: Phone, api: Api) -> None:
    await genuine_then_spoofed(phone)

    body = (await api.get(f"{caller_path()}/export")).json()

    calls = [(c["call"]["caller_verified"], [t["text"] for t in c["turns"]][1]) for c in body["calls"]]
    assert calls == [(True, FACT), (False, SPOOFED)]


async def test_erasure_removes_the_spoofed_call_too(phone: Phone, api: Api, sql: Callable[..., Any]) -> None:
    await genuine_then_spoofed(phone)

    receipt = (await api.delete(caller_path())).json()

    assert receipt["deleted"]["calls"] == 2
    assert await sql("SELECT text FROM turns") == []
