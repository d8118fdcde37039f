"""Summaries have an LLM budget of their own (endpoint, model, concurrency), and on an endpoint shared
with live answers they give way to them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from callmemory.summaries.gate import LiveAnswers
from support.app import running, summarise_queued
from support.llm import FakeLLM, LLMServer, summary_requests
from support.phone import Phone
from support.waiting import eventually

Rows = Callable[..., Any]


def spans(llm: FakeLLM, kind: str) -> list[tuple[float, float]]:
    return [(received, answered) for k, received, answered in llm.timeline if k == kind]


async def answer_in_flight(
    phone: Phone, llm: FakeLLM, redis: Redis, settings: Settings, delay_s: float = 0.6
) -> asyncio.Task[str]:
    """A caller's turn whose answer the LLM is still working on, noted as live in Redis."""
    llm.delay_s = delay_s
    call_id, _ = await phone.ring()
    speaking = asyncio.create_task(phone.say(call_id, "Are you still there?"))
    live = LiveAnswers(redis, prefix=settings.redis_prefix, answer_timeout_s=1, quiet_s=0)

    async def noted() -> bool:
        return llm.in_flight == 1 and await live.busy()

    await eventually(noted)
    return speaking


async def test_a_summary_on_the_live_answers_endpoint_starts_only_after_the_answer_in_flight(
    llm: FakeLLM, settings: Settings, redis: Redis
) -> None:
    patient = settings.model_copy(update={"llm_timeout_s": 10.0})  # the answer ends at the LLM's pace
    async with running(patient) as client:
        phone = Phone(client)
        await phone.call("My dishwasher with serial DW-7731 is leaking.")
        llm.summary_delay_s = 0.0
        speaking = await answer_in_flight(phone, llm, redis, settings, delay_s=2.5)

        await summarise_queued(settings)
        await speaking

    [(_, answered)] = spans(llm, "answer")[-1:]
    [(summary_received, _)] = spans(llm, "summary")
    assert summary_received >= answered + settings.summary_quiet_s


async def test_a_summary_on_an_endpoint_of_its_own_does_not_wait_for_live_answers(
    phone: Phone, llm: FakeLLM, settings: Settings, redis: Redis
) -> None:
    await phone.call("My dishwasher with serial DW-7731 is leaking.")
    async with LLMServer(FakeLLM()).running() as summaries_llm:
        # Longer than the live answers' limit: only that the summary needs no waiting for it matters here.
        speaking = await answer_in_flight(phone, llm, redis, settings, delay_s=3.0)

        await summarise_queued(
            settings.model_copy(
                update={"summary_base_url": summaries_llm.base_url, "summary_model": "small-summariser"}
            )
        )
        answered = llm.in_flight == 0
        await speaking

    assert not answered
    [request] = summary_requests(summaries_llm.stub)
    assert request["model"] == "small-summariser"
    assert summary_requests(llm) == []


async def test_leftover_jobs_are_summarised_one_at_a_time_by_default(
    settings: Settings, llm: FakeLLM, sql: Rows
) -> None:
    async with running(settings) as client:  # the worker is off: the jobs stay queued
        for n in range(3):
            await Phone(client, caller=f"+1415555010{n}").call(f"Question number {n}.")
    llm.summary_delay_s = 0.2

    async with running(settings.model_copy(update={"summary_worker": True})):

        async def all_summarised() -> bool:
            return not await sql("SELECT call_id FROM summary_jobs")

        await eventually(all_summarised)

    assert len(spans(llm, "summary")) == 3
    assert llm.most_in_flight == 1
