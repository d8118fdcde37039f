"""Summary failures and degraded jobs are counted by reason."""

from __future__ import annotations

from callmemory.services import open_services
from callmemory.settings import Settings
from support.llm import FakeLLM, wordy, wrong_keys
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
