"""A summary model that misbehaves as a real small one did still moves the caller's memory on: each case
ends in a summary or in the fallback made from the transcript, and the next call is greeted and prompted
with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from callmemory.devtools.stub_llm import summarise
from callmemory.settings import Settings
from support.app import summarise_queued
from support.llm import FakeLLM, preparing, summary_requests, wordy, wrong_keys
from support.phone import Phone

Rows = Callable[..., Any]
FACT = "My dishwasher with serial DW-7731 is leaking again."
NOTHING_NEW = "Nothing new, just checking."
MARIA = "Hi, this is Maria Lopez. My order 48213 never arrived."
# SmolLM2-135M on llama.cpp's server, default settings, after two calls from Maria.
SMOLLM_GREETING = (
    "I'm sorry for any misunderstanding. The caller said: Hi, this is Maria Lopez. My order 48213 never "
    "arrived. Assistant: Sorry, I couldn't help but mention it"
)


def template_with_marias_topic(settings: Settings) -> str:
    """How the next call is greeted when no greeting was prepared: the topic is picked from MARIA."""
    return settings.greeting_returning.replace("{topic}", "My order 48213 never arrived")


async def next_call(phone: Phone, llm: FakeLLM) -> tuple[str, str]:
    """The greeting of the caller's next call, and the prompt of its first answer."""
    call_id, greeting = await phone.ring()
    await phone.say(call_id, NOTHING_NEW)
    return greeting, llm.prompt_text()


async def greeted_with_the_models_summary(phone: Phone, llm: FakeLLM, sql: Rows) -> bool:
    """Whether the job is done and the next call is greeted as the (stub) model prepared it."""
    done = await sql("SELECT call_id FROM summary_jobs") == []
    greeting, _ = await next_call(phone, llm)
    return done and greeting == 'Welcome back! Is it still about "My dishwasher with serial"?'


async def test_right_json_with_wrong_keys_ends_in_the_fallback_and_the_next_call_sees_it(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(FACT)
    llm.summary = wrong_keys

    await summarise_queued(settings)

    [job] = await sql("SELECT last_error FROM summary_jobs")
    assert job.last_error == "degraded (missing key: the summary has no 'call_summary')"
    greeting, prompt = await next_call(phone, llm)
    assert "DW-7731" in greeting  # this call's topic, in the operator's template
    assert f"Summary of your earlier calls with this caller: The caller said: {FACT}" in prompt


async def test_a_short_call_answered_wrongly_is_not_asked_again_unchanged(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call(FACT)
    llm.summary = wrong_keys

    await summarise_queued(settings)

    assert len(summary_requests(llm)) == 1  # nothing could be changed: the fallback at once


async def test_a_long_call_answered_wrongly_is_asked_again_with_less_of_its_transcript(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call(*(f"Line {n}: the dishwasher still leaks onto the kitchen floor." for n in range(40)))
    llm.summary = wrong_keys

    await summarise_queued(settings.model_copy(update={"summary_transcript_tokens": 400}))

    sent = [json.loads(r["messages"][-1]["content"])["call"]["transcript"] for r in summary_requests(llm)]
    assert len(sent) == 3  # 400, 200 and 100 tokens of transcript; half of that would be too little
    assert len(sent[0]) > len(sent[1]) > len(sent[2])
    assert all(text.endswith("kitchen floor.") for text in sent)  # the end of the call is kept


async def test_wrong_types_are_named_with_their_key_and_end_in_the_fallback(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(FACT)

    def wrong_types(messages: list[dict[str, Any]]) -> str:
        right = json.loads(summarise(messages))
        return json.dumps({**right, "caller_summary": ["leaking dishwasher", "DW-7731"]})

    llm.summary = wrong_types

    await summarise_queued(settings)

    [job] = await sql("SELECT last_error FROM summary_jobs")
    assert job.last_error == "degraded (wrong type: 'caller_summary' is a list, not a string)"
    [caller] = await sql("SELECT summary FROM callers")
    assert caller.summary == f"The caller said: {FACT}"


async def test_of_two_objects_the_first_is_the_summary(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(FACT)
    llm.summary = lambda messages: (
        f"Here it is:\n```json\n{summarise(messages)}\n```\nAnd a note: {json.dumps({'note': 'ok'})}"
    )

    await summarise_queued(settings)

    assert await greeted_with_the_models_summary(phone, llm, sql)


async def test_an_answer_cut_at_max_tokens_is_asked_again_with_more_tokens(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(FACT)
    llm.cut_at_max_tokens = True
    llm.summary = wordy

    await summarise_queued(settings)

    assert [r["max_tokens"] for r in summary_requests(llm)] == [600, 1200]
    assert await greeted_with_the_models_summary(phone, llm, sql)


async def test_an_answer_always_cut_is_named_truncated_and_ends_in_the_fallback(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(FACT)
    llm.cut_at_max_tokens = True
    llm.summary = lambda messages: '{"call_summary": "' + "leaking " * 5000 + '"}'

    await summarise_queued(settings)

    assert [r["max_tokens"] for r in summary_requests(llm)] == [600, 1200, 2400]
    [job] = await sql("SELECT last_error FROM summary_jobs")
    assert job.last_error.startswith("degraded (truncated: the answer was cut at max_tokens")
    greeting, prompt = await next_call(phone, llm)
    assert "DW-7731" in greeting
    assert f"The caller said: {FACT}" in prompt


async def test_a_summary_slower_than_a_live_answer_may_be_still_gets_through(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(FACT)
    llm.summary_delay_s = 0.8  # past the live answers' limit, within the summaries'

    await summarise_queued(settings.model_copy(update={"llm_timeout_s": 0.3}))

    assert await greeted_with_the_models_summary(phone, llm, sql)


async def test_a_timeout_is_named_and_retried_later_with_less_transcript(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(*(f"Line {n}: the dishwasher still leaks onto the kitchen floor." for n in range(40)))
    llm.summary_delay_s = 0.5
    slow = settings.model_copy(update={"summary_timeout_s": 0.2, "summary_retry_base_s": 0})

    await summarise_queued(slow.model_copy(update={"summary_max_attempts": 2}))

    first, second = (json.loads(r["messages"][-1]["content"]) for r in summary_requests(llm))
    assert len(second["call"]["transcript"]) < len(first["call"]["transcript"])
    [job] = await sql("SELECT last_error FROM summary_jobs")
    assert job.last_error == "degraded (timeout: no summary within 0.2 s)"


async def test_a_prompt_beyond_the_models_context_is_cut_until_it_fits(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(*(f"Line {n}: the dishwasher still leaks onto the kitchen floor." for n in range(60)))
    llm.context_tokens = 1400  # SmolLM2's 2048 less some: the 6000 tokens of transcript allowed do not fit

    await summarise_queued(settings)

    assert await sql("SELECT call_id FROM summary_jobs") == []
    assert len(summary_requests(llm)) > 1
    [caller] = await sql("SELECT summary FROM callers")
    assert "kitchen floor" in caller.summary


@pytest.mark.parametrize(
    ("written", "heard"),
    [
        ("**Welcome back, Maria!** \N{SMILING FACE WITH SMILING EYES}", "Welcome back, Maria!"),
        # The sentence with the blank is left out, as from a live answer, and nothing is left.
        ("**Welcome back, [name]!** \N{SMILING FACE WITH SMILING EYES}", None),
    ],
)
async def test_a_prepared_greeting_is_said_as_a_live_answer_would_be_or_else_the_template(
    phone: Phone, llm: FakeLLM, settings: Settings, written: str, heard: str | None
) -> None:
    await phone.call(MARIA)
    llm.summary = preparing(written)

    await summarise_queued(settings)

    greeting, _ = await next_call(phone, llm)
    assert greeting == (heard or template_with_marias_topic(settings))


async def test_a_greeting_that_reads_the_call_back_is_refused_and_the_summary_kept(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(MARIA)
    llm.summary = preparing(SMOLLM_GREETING)

    await summarise_queued(settings)

    assert await sql("SELECT call_id FROM summary_jobs") == []  # done, not degraded
    [caller] = await sql("SELECT summary, next_greeting FROM callers")
    assert caller.next_greeting is None
    assert caller.summary == f"The caller said: {MARIA} | Latest: The caller said: {MARIA}"
    greeting, _ = await next_call(phone, llm)
    assert greeting == template_with_marias_topic(settings)


async def test_profile_entries_a_small_model_made_up_are_left_out_and_the_rest_kept(
    phone: Phone, llm: FakeLLM, settings: Settings, sql: Rows
) -> None:
    await phone.call(MARIA)
    llm.summary = preparing(
        "Welcome back, Maria! Has order 48213 arrived?",
        promises=[
            "profileListingImg_0f5c9d7e-\N{HORIZONTAL ELLIPSIS}.png",
            "I'm sorry for any misunderstanding.",
            "Check where order 48213 is",
        ],
    )

    await summarise_queued(settings)

    [caller] = await sql("SELECT profile, next_greeting FROM callers")
    assert caller.profile["promises"] == ["Check where order 48213 is"]
    assert caller.next_greeting == "Welcome back, Maria! Has order 48213 arrived?"


async def test_a_refusal_is_logged_by_its_reason_without_a_word_of_what_was_written(
    phone: Phone, llm: FakeLLM, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await phone.call(MARIA)
    llm.summary = preparing(SMOLLM_GREETING, promises=["I'm sorry for any misunderstanding."])

    with caplog.at_level(logging.INFO, logger="callmemory.summaries"):
        await summarise_queued(settings)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "the prepared greeting was refused (role_label)" in logged
    assert "profile entries refused: 1 (apology)" in logged
    assert "Maria" not in logged
    assert "misunderstanding" not in logged
