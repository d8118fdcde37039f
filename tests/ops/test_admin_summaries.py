"""`callmemory summaries status | requeue`: degraded summary jobs are seen by reason and tried again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from callmemory.settings import Settings
from support.app import summarise_queued
from support.cli import callmemory, cli_env
from support.llm import FakeLLM, wrong_keys
from support.phone import Phone

Rows = Callable[..., Any]
BOT = "+14155550000"
OTHER_CALLER = "+14155551999"
DISHWASHER = "My dishwasher with serial DW-7731 is leaking again."


async def degraded_calls(phone: Phone, llm: FakeLLM, settings: Settings) -> None:
    """Two callers' calls, each summarised from the transcript: the model's answers had the wrong keys."""
    await phone.call(DISHWASHER)
    phone.caller = OTHER_CALLER
    await phone.call("My invoice 58120 was charged twice.")
    phone.caller = Phone.caller
    llm.summary = wrong_keys
    await summarise_queued(settings)


async def test_status_counts_degraded_jobs_by_reason(phone: Phone, llm: FakeLLM, settings: Settings) -> None:
    await degraded_calls(phone, llm, settings)

    ran = await callmemory(cli_env(settings), "summaries", "status")

    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "due": 0,
        "waiting": 0,
        "degraded": 2,
        "degraded_by_reason": {"missing_key": 2},
    }


async def test_a_requeued_degraded_job_replaces_the_fallback_with_the_models_summary(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await degraded_calls(phone, llm, settings)
    llm.summary = FakeLLM().summary  # the model answers right now

    ran = await callmemory(cli_env(settings), "summaries", "requeue", "--degraded")
    await summarise_queued(settings)

    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == {"requeued": 2}
    assert await sql("SELECT call_id FROM summary_jobs") == []
    calls = await sql("SELECT summary FROM calls ORDER BY id")
    assert [c.summary for c in calls] == [
        f"The caller said: {DISHWASHER}",
        "The caller said: My invoice 58120 was charged twice.",
    ]
    _, greeting = await phone.ring()
    assert greeting == 'Welcome back! Is it still about "My dishwasher with serial"?'


async def test_requeue_of_one_caller_leaves_the_others_degraded(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await degraded_calls(phone, llm, settings)

    ran = await callmemory(
        cli_env(settings), "summaries", "requeue", "--degraded", "--bot", BOT, "--caller", OTHER_CALLER
    )

    assert json.loads(ran.stdout) == {"requeued": 1}
    status = json.loads((await callmemory(cli_env(settings), "summaries", "status")).stdout)
    assert (status["due"], status["degraded"]) == (1, 1)


async def test_requeue_without_degraded_makes_a_job_waiting_for_a_retry_due_now(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call(DISHWASHER)
    llm.status = 503
    await summarise_queued(settings.model_copy(update={"summary_retry_base_s": 600}))

    ran = await callmemory(cli_env(settings), "summaries", "requeue")

    assert json.loads(ran.stdout) == {"requeued": 1}
    status = json.loads((await callmemory(cli_env(settings), "summaries", "status")).stdout)
    assert (status["due"], status["waiting"]) == (1, 0)


async def test_requeue_of_a_caller_needs_the_bot_too(settings: Settings) -> None:
    ran = await callmemory(cli_env(settings), "summaries", "requeue", "--caller", OTHER_CALLER)

    assert ran.status == 2
    assert "--caller and --bot go together" in ran.stderr
