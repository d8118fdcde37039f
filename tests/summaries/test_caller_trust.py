"""The summary job under CALLMEMORY_DISCLOSURE=verified: what an unverified call said is never an input
of the caller's rolling summary, profile or next greeting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from callmemory.settings import Settings
from support.app import summarise_queued
from support.llm import FakeLLM, summary_requests
from support.phone import Phone
from support.trust import FACT, GENUINE, SPOOF_WORD, genuine_then_spoofed


@pytest.fixture
def phone(guarded: httpx.AsyncClient) -> Phone:
    return Phone(guarded, caller=GENUINE)


async def test_a_call_kept_apart_queues_no_summary_job(
    phone: Phone, guarded_settings: Settings, sql: Callable[..., Any]
) -> None:
    await genuine_then_spoofed(phone)

    jobs = await sql("SELECT c.caller_verified FROM summary_jobs j JOIN calls c ON c.id = j.call_id")

    assert [j.caller_verified for j in jobs] == [True]


async def test_no_summary_request_carries_what_the_spoof_said(
    phone: Phone, guarded_settings: Settings, llm: FakeLLM
) -> None:
    await genuine_then_spoofed(phone)
    await summarise_queued(guarded_settings)
    await phone.call("Any news about my parcel?", verified=True)
    await summarise_queued(guarded_settings)

    requests = summary_requests(llm)

    assert len(requests) == 2
    assert all(SPOOF_WORD not in str(r["messages"]) for r in requests)
    assert "88213" in str(requests[-1]["messages"])  # the rolling summary carried over


async def test_the_rolling_summary_profile_and_next_greeting_hold_nothing_of_the_spoof(
    phone: Phone, guarded_settings: Settings, sql: Callable[..., Any]
) -> None:
    await genuine_then_spoofed(phone)
    await summarise_queued(guarded_settings)

    [row] = await sql("SELECT summary, profile::text AS profile, next_greeting FROM callers")
    _, greeting = await phone.ring(verified=True)

    assert FACT.rstrip(".") in row.summary
    assert SPOOF_WORD not in f"{row.summary} {row.profile} {row.next_greeting}"
    assert SPOOF_WORD not in greeting
