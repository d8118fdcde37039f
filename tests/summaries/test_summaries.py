"""The summary job: queued with the archived call, run off the request path, idempotent, durable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.memory.hot.store import HotSettings, HotStore
from callmemory.services import open_services
from callmemory.settings import Settings
from support.app import purge, running, summarise_queued
from support.llm import FakeLLM, summary_requests
from support.phone import Phone
from support.waiting import eventually


async def test_a_hangup_queues_a_summary_job_and_answers_without_asking_the_llm(
    phone: Phone, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.ring()
    await phone.say(call_id, "My account number is 99812.")
    before = len(llm.requests)

    assert await phone.hang_up(call_id) == {"status": "archived"}

    assert len(llm.requests) == before
    jobs = await sql("SELECT c.external_id FROM summary_jobs j JOIN calls c ON c.id = j.call_id")
    assert [j.external_id for j in jobs] == [call_id]


async def test_a_repeated_hangup_queues_no_second_job(phone: Phone, sql: Callable[..., Any]) -> None:
    call_id, _ = await phone.ring()
    await phone.hang_up(call_id)
    await phone.hang_up(call_id)

    assert len(await sql("SELECT call_id FROM summary_jobs")) == 1


async def test_the_summary_job_stores_call_summary_rolling_summary_profile_and_greeting(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")

    assert await summarise_queued(settings) == 1

    [request] = summary_requests(llm)
    assert "My account number is 99812." in request["messages"][-1]["content"]
    [call] = await sql("SELECT summary FROM calls")
    assert call.summary == "The caller said: My account number is 99812."
    [caller] = await sql("SELECT summary, profile, next_greeting FROM callers")
    assert "99812" in caller.summary
    assert caller.profile == {"open_issues": ["My account number is 99812."]}
    assert caller.next_greeting.startswith("Welcome back!")
    assert await sql("SELECT call_id FROM summary_jobs") == []


async def test_a_summary_folds_into_the_previous_rolling_summary(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    await summarise_queued(settings)
    await phone.call("I moved to Berlin.")

    await summarise_queued(settings)

    sent = json.loads(summary_requests(llm)[-1]["messages"][-1]["content"])
    assert "99812" in sent["previous_summary"]
    [caller] = await sql("SELECT summary FROM callers")
    assert "99812" in caller.summary
    assert "Berlin" in caller.summary


async def test_running_a_summary_job_twice_changes_nothing(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    async with open_services(settings) as services:
        assert services.summaries is not None
        worker = services.summaries
        # Two workers holding the same job (the first one's lease ran out while it was still working).
        queue = worker.queue
        task = await queue.claim(lease_s=0, max_attempts=5)
        again = await queue.claim(lease_s=60, max_attempts=5)
        assert task is not None
        assert again is not None
        assert again.job_id == task.job_id
        first = await worker.summariser.summarise(task)
        assert await queue.complete(task, first) is not None
        before = await sql("SELECT summary, profile, next_greeting, call_count FROM callers")

        second = await worker.summariser.summarise(again)
        assert await queue.complete(again, second) is None

    assert await sql("SELECT summary, profile, next_greeting, call_count FROM callers") == before
    assert await summarise_queued(settings) == 0


async def test_queued_summary_jobs_survive_a_restart_and_the_lifespan_worker_runs_them(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    async with running(settings) as client:  # the worker is off: the job stays queued
        await Phone(client).call("My account number is 99812.")
    assert len(await sql("SELECT call_id FROM summary_jobs")) == 1
    assert summary_requests(llm) == []

    async with running(settings.model_copy(update={"summary_worker": True})):
        for _ in range(200):
            if await sql("SELECT 1 FROM callers WHERE summary IS NOT NULL"):
                break
            await asyncio.sleep(0.05)

    assert len(summary_requests(llm)) == 1
    assert "99812" in (await sql("SELECT summary FROM callers"))[0].summary
    assert await sql("SELECT call_id FROM summary_jobs") == []


async def test_the_summary_worker_works_on_several_jobs_at_once(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    async with running(settings) as client:  # the worker is off: the jobs stay queued
        for n in range(4):
            await Phone(client, caller=f"+1415555010{n}").call(f"Question number {n}.")
    llm.delay_s = 0.5  # each summary waits on the LLM long enough for the others to be claimed

    async with running(settings.model_copy(update={"summary_worker": True, "summary_concurrency": 4})):

        async def all_summarised() -> bool:
            return not await sql("SELECT call_id FROM summary_jobs")

        await eventually(all_summarised)

    assert llm.most_in_flight == 4


async def test_a_failed_summary_is_retried_later_with_back_off(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    llm.status = 500

    assert await summarise_queued(settings.model_copy(update={"summary_retry_base_s": 60})) == 1

    [job] = await sql(
        "SELECT attempts, last_error, not_before > now() + interval '50 s' AS later FROM summary_jobs"
    )
    assert (job.attempts, job.later) == (1, True)
    assert "500" in job.last_error
    assert await sql("SELECT 1 FROM callers WHERE summary IS NOT NULL") == []


async def test_a_provider_failure_is_retried_and_a_later_try_succeeds(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    async with open_services(settings.model_copy(update={"summary_retry_base_s": 0})) as services:
        assert services.summaries is not None
        llm.status = 503
        assert await services.summaries.run_once()
        llm.status = 200

        assert await services.summaries.run_once()

    assert [r["max_tokens"] for r in summary_requests(llm)] == [600, 600]
    assert await sql("SELECT call_id FROM summary_jobs") == []
    assert "99812" in (await sql("SELECT summary FROM callers"))[0].summary


async def test_a_provider_failing_every_try_ends_in_the_fallback_after_the_configured_tries(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    llm.status = 500

    taken = await summarise_queued(
        settings.model_copy(update={"summary_retry_base_s": 0, "summary_max_attempts": 3})
    )

    assert taken == 3
    assert len(summary_requests(llm)) == 3
    [job] = await sql("SELECT attempts, last_error FROM summary_jobs")
    assert job.attempts == 3
    assert job.last_error.startswith("degraded (provider: InternalServerError (HTTP 500)")
    [caller] = await sql("SELECT summary FROM callers")
    assert caller.summary == "The caller said: My account number is 99812."


async def test_a_summary_request_has_its_own_time_limit(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Callable[..., Any]
) -> None:
    await phone.call("My account number is 99812.")
    llm.delay_s = 1.0

    await summarise_queued(settings.model_copy(update={"summary_timeout_s": 0.2, "summary_retry_base_s": 60}))

    [job] = await sql("SELECT attempts, last_error FROM summary_jobs")
    assert job.attempts == 1
    assert "no summary within" in job.last_error


async def test_a_summary_already_rehydrated_into_redis_is_not_added_twice(
    phone: Phone, settings: Settings, redis: Redis
) -> None:
    await phone.call("My account number is 99812.")
    async with open_services(settings) as services:
        assert services.summaries is not None
        queue = services.summaries.queue
        task = await queue.claim(lease_s=60, max_attempts=5)
        assert task is not None
        memory = await queue.complete(task, await services.summaries.summariser.summarise(task))
        assert memory is not None
        # Redis lost the caller and a ringing rehydrated them from the archive, summary included ...
        await purge(redis, settings.redis_prefix)
        await phone.ring()
        # ... before the worker got to update hot memory.
        hot = HotStore(redis, HotSettings(prefix=settings.redis_prefix))
        await hot.remember_summary(memory, memory.call_summaries[-1])

        read = await hot.read_caller(memory.caller)

    assert read is not None
    assert [s.call_id for s in read.call_summaries] == [task.call.call_id]
