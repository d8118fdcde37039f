"""Summary failures, degraded jobs, and what the model wrote that was refused are counted by reason."""

from __future__ import annotations

from callmemory.services import open_services
from callmemory.settings import Settings
from support.llm import FakeLLM, preparing, wordy, wrong_keys
from support.metrics import Scrape
from support.phone import Phone


async def scraped_after_summaries(settings: Settings) -> Scrape:
    async with open_services(settings) as services:
        assert services.summaries is not None
        await services.summaries.drain()
        return Scrape(services.metrics.exposition()[0].decode())


async def test_a_degraded_job_is_counted_by_the_reason_of_its_last_failure(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My dishwasher with serial DW-7731 is leaking again.")
    llm.summary = wrong_keys

    seen = await scraped_after_summaries(settings)

    assert seen.value("callmemory_summary_jobs_total", outcome="degraded") == 1
    assert seen.value("callmemory_summary_degraded_total", reason="missing_key") == 1
    assert seen.value("callmemory_summary_failures_total", reason="missing_key") == 1


async def test_a_failure_fixed_by_the_changed_request_is_counted_and_the_job_done(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My dishwasher with serial DW-7731 is leaking again.")
    llm.cut_at_max_tokens = True
    llm.summary = wordy

    seen = await scraped_after_summaries(settings)

    assert seen.value("callmemory_summary_failures_total", reason="truncated") == 1
    assert seen.value("callmemory_summary_jobs_total", outcome="done") == 1
    assert seen.value("callmemory_summary_jobs_total", outcome="degraded") == 0


async def test_a_refused_greeting_and_refused_profile_entries_are_counted_by_reason_in_a_done_job(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("Hi, this is Maria Lopez. My order 48213 never arrived.")
    llm.summary = preparing(
        "Welcome back! Caller: my order never arrived.",
        promises=["profileListingImg_0f5c9d7e.png", "I'm sorry for any misunderstanding.", "a.png"],
    )

    seen = await scraped_after_summaries(settings)

    assert seen.value("callmemory_prepared_greetings_refused_total", reason="role_label") == 1
    assert seen.value("callmemory_profile_entries_refused_total", reason="file_name") == 2
    assert seen.value("callmemory_profile_entries_refused_total", reason="apology") == 1
    assert seen.value("callmemory_summary_jobs_total", outcome="done") == 1


async def test_a_fit_greeting_and_profile_count_no_refusal(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My dishwasher with serial DW-7731 is leaking again.")

    seen = await scraped_after_summaries(settings)

    assert seen.value("callmemory_summary_jobs_total", outcome="done") == 1
    assert not any(
        name.startswith(("callmemory_prepared_greetings_refused", "callmemory_profile_entries_refused"))
        and value
        for (name, _), value in seen.samples.items()
    )
