"""VoIPBin's event webhook: signatures, redeliveries, held events, own-LLM answers through the REST API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from callmemory.platforms.voipbin import wire as voipbin_wire
from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.metrics import scrape
from support.voipbin import (
    ACCESS_KEY,
    MANAGED_BOT,
    FakeVoipbinApi,
    ScriptedCall,
    Voipbin,
    archived,
)
from support.waiting import eventually

Rows = Callable[..., Any]


async def started(voipbin: Voipbin, call: ScriptedCall) -> None:
    await voipbin.actions(call)
    await voipbin.deliver_all([call.created(), call.progressing()])


async def test_a_badly_signed_event_is_refused_with_401_and_not_applied(
    voipbin: Voipbin, redis: Redis, voipbin_settings: Settings
) -> None:
    call = ScriptedCall()

    response = await voipbin.deliver(call.created(), signature="sha256=" + "0" * 64)

    assert response.status_code == 401
    assert "does not match" in response.json()["detail"]
    assert [k async for k in redis.scan_iter(match=f"{voipbin_settings.redis_prefix}:*")] == []


async def test_an_unsigned_event_is_refused_when_a_secret_is_configured(voipbin: Voipbin) -> None:
    response = await voipbin.deliver(ScriptedCall().created(), signature="")

    assert response.status_code == 401
    assert "missing" in response.json()["detail"]


async def test_events_are_accepted_unsigned_when_no_secret_is_configured(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi
) -> None:
    unsigned = voipbin_settings.model_copy(update={"voipbin_webhook_secret": None})
    async with running(unsigned) as http:
        response = await Voipbin(http, voipbin_api).deliver(ScriptedCall().created(), signature="")

    assert response.status_code == 200


async def test_an_unknown_event_type_is_acknowledged(voipbin: Voipbin) -> None:
    response = await voipbin.deliver({"type": "recording_started", "data": {"id": "r-1"}})

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"


async def test_a_redelivered_event_is_applied_once(voipbin: Voipbin, sql: Rows) -> None:
    call = ScriptedCall()
    await started(voipbin, call)
    said = call.transcript("Where is my parcel?")

    outcomes = await voipbin.deliver_all([call.transcribe_created(), said, said, call.hangup()])

    assert outcomes[1:3] == ["applied", "duplicate"]
    assert [t for t in await archived(sql, call) if t[0] == "caller"] == [("caller", "Where is my parcel?")]


async def test_an_ai_message_delivered_again_under_another_dedup_key_is_recorded_once(
    voipbin: Voipbin, sql: Rows
) -> None:
    # As when a delivery's dedup key was released after a failure that came after its turn was recorded.
    call = ScriptedCall(bot=MANAGED_BOT)
    await started(voipbin, call)
    message = call.ai_message("assistant", "Your parcel is on its way.")
    again = {**message, "data": {**message["data"], "tm_update": "2026-12-03T08:00:00.000Z"}}

    outcomes = await voipbin.deliver_all([message, again, call.hangup()])

    assert outcomes == ["applied", "duplicate", "applied"]
    assert (await archived(sql, call))[1:] == [("bot", "Your parcel is on its way.")]


async def test_a_caller_transcript_is_answered_by_our_llm_through_the_rest_api(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, llm: FakeLLM
) -> None:
    call = ScriptedCall()
    await started(voipbin, call)

    await voipbin.deliver_all([call.transcribe_created(), call.transcript("Where is my parcel?")])

    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": "Where is my parcel?"}
    [talk] = voipbin_api.talks
    assert talk["call_id"] == call.call_id
    assert talk["text"] == "You said: Where is my parcel?"
    assert (talk["language"], talk["provider"]) == ("en-US", "gcp")
    # Where VoIPBin reads an access key; a Bearer header would be parsed as a login JWT and refused.
    assert talk["cookies"] == {"accesskey": ACCESS_KEY}
    assert talk["authorization"] is None
    assert talk["query"] == {}  # the access key never travels in a URL that gets logged


async def test_the_bots_own_transcript_is_not_recorded_twice(voipbin: Voipbin, sql: Rows) -> None:
    call = ScriptedCall()
    await started(voipbin, call)

    await voipbin.deliver_all(
        [
            call.transcribe_created(),
            call.transcript("Where is my parcel?"),
            call.transcript("You said: Where is my parcel?", direction="out"),
            call.hangup(),
        ]
    )

    assert [role for role, _ in await archived(sql, call)] == ["bot", "caller", "bot"]


async def test_a_talk_is_retried_on_5xx(voipbin: Voipbin, voipbin_api: FakeVoipbinApi) -> None:
    voipbin_api.failures = [502, 503]
    call = ScriptedCall()
    await started(voipbin, call)

    await voipbin.deliver_all([call.transcribe_created(), call.transcript("Hello there, anyone?")])

    assert [status for _, status in voipbin_api.refused] == [502, 503]
    assert voipbin_api.said(call.call_id) == ["You said: Hello there, anyone?"]


async def test_a_talk_refused_with_4xx_is_not_retried(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, caplog: pytest.LogCaptureFixture
) -> None:
    voipbin_api.failures = [404]
    call = ScriptedCall()
    await started(voipbin, call)

    await voipbin.deliver_all([call.transcribe_created(), call.transcript("Hello there, anyone?")])

    assert [status for _, status in voipbin_api.refused] == [404]
    assert voipbin_api.talks == []
    assert "VoIPBin refused talk" in caplog.text


async def test_a_refused_access_key_is_reported_once_as_a_configuration_error_and_not_retried(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "vb_" + "x" * 30
    misconfigured = voipbin_settings.model_copy(update={"voipbin_access_key": SecretStr(wrong_key)})
    async with running(misconfigured) as http:
        voipbin = Voipbin(http, voipbin_api)
        for _ in range(2):
            call = ScriptedCall()
            await started(voipbin, call)
            await voipbin.deliver_all([call.transcribe_created(), call.transcript("Hello there, anyone?")])
        metrics = await scrape(http)

    assert [status for _, status in voipbin_api.refused] == [401, 401]  # one try per answer
    assert caplog.text.count("configuration error: VoIPBin refused CALLMEMORY_VOIPBIN_ACCESS_KEY") == 1
    assert metrics.value("callmemory_voipbin_talks_total", outcome="unauthorized") == 2
    assert wrong_key not in caplog.text


async def test_an_answer_ready_after_the_hangup_is_not_spoken_nor_recorded(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, llm: FakeLLM, sql: Rows, voipbin_settings: Settings
) -> None:
    llm.delay_s = 0.5
    call = ScriptedCall()
    await started(voipbin, call)
    await voipbin.deliver(call.transcribe_created())
    answering = asyncio.create_task(voipbin.deliver(call.transcript("Where is my parcel?")))

    async def asked() -> bool:
        return len(llm.requests) == 1

    await eventually(asked)

    await voipbin.deliver(call.hangup())
    await answering

    assert voipbin_api.talks == []
    assert voipbin_api.refused == []  # not even tried: VoIPBin refuses a talk into an ended call
    assert await archived(sql, call) == [
        ("bot", voipbin_settings.greeting_new),
        ("caller", "Where is my parcel?"),
    ]


async def test_transcripts_before_their_transcribe_are_held_then_answered_once(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows
) -> None:
    call = ScriptedCall()
    await started(voipbin, call)

    outcomes = await voipbin.deliver_all(
        [call.transcript("First question."), call.transcript("Second question."), call.transcribe_created()]
    )
    await voipbin.deliver_all([call.hangup()])

    assert outcomes == ["held", "held", "applied"]
    assert voipbin_api.said(call.call_id) == ["You said: Second question."]
    assert [text for _, text in await archived(sql, call)][1:] == [
        "First question.",
        "Second question.",
        "You said: Second question.",
    ]


async def test_a_transcript_whose_transcribe_comes_after_the_hangup_is_archived_with_the_call(
    voipbin: Voipbin, voipbin_api: FakeVoipbinApi, sql: Rows
) -> None:
    call = ScriptedCall()
    await started(voipbin, call)

    await voipbin.deliver_all(
        [call.transcript("I have to go now."), call.hangup(), call.transcribe_created()]
    )

    assert (await archived(sql, call))[-1] == ("caller", "I have to go now.")
    assert voipbin_api.talks == []  # nobody is left to hear an answer


async def test_a_summary_is_stored_with_the_call(voipbin: Voipbin, sql: Rows) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await started(voipbin, call)

    await voipbin.deliver_all([call.summary("The caller asked about order 4417."), call.hangup()])

    [row] = await sql("SELECT summary FROM calls WHERE external_id = :id", id=call.call_id)
    assert row.summary == "The caller asked about order 4417."


async def test_a_summary_after_the_hangup_updates_the_archived_call(voipbin: Voipbin, sql: Rows) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await started(voipbin, call)

    await voipbin.deliver_all([call.hangup(), call.summary("The caller asked about order 4417.")])

    [row] = await sql("SELECT summary FROM calls WHERE external_id = :id", id=call.call_id)
    assert row.summary == "The caller asked about order 4417."


async def test_an_event_that_could_not_be_stored_gets_503_and_its_retry_is_applied(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, voipbin: Voipbin, sql: Rows
) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await started(voipbin, call)
    message = call.ai_message("user", "My order 4417 never arrived.")
    down = voipbin_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.2})
    async with running(down) as http:
        failed = await Voipbin(http, voipbin_api).deliver(message)

    retried = await voipbin.deliver_all([message, call.hangup()])

    assert failed.status_code == 503
    assert retried[0] == "applied"
    assert ("caller", "My order 4417 never arrived.") in await archived(sql, call)


async def test_an_event_with_a_bad_field_gets_422_naming_it(voipbin: Voipbin) -> None:
    response = await voipbin.deliver({"type": "transcript_created", "data": {"id": "t-1"}})

    assert response.status_code == 422
    assert response.json()["field"] == "data.transcribe_id"


async def test_a_hangup_reporting_an_odd_caller_number_still_archives_the_call(
    voipbin: Voipbin, sql: Rows
) -> None:
    call = ScriptedCall()
    await started(voipbin, call)
    hangup = call.hangup()
    hangup["data"]["source"]["target"] = "anonymous"

    await voipbin.deliver_all([hangup])

    assert len(await archived(sql, call)) == 1  # the greeting


async def test_events_of_a_call_no_fetch_started_are_acknowledged_and_dropped(
    voipbin: Voipbin, sql: Rows
) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)

    outcomes = await voipbin.deliver_all(
        [call.created(), call.hangup(), call.ai_message("user", "Hello?"), call.summary("Nothing.")]
    )

    assert outcomes == ["applied", "applied", "ignored", "ignored"]
    assert await sql("SELECT id FROM calls") == []


async def test_a_hangup_the_archive_could_not_take_is_acknowledged_and_archived_once_when_it_answers(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, voipbin: Voipbin, sql: Rows
) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await started(voipbin, call)
    await voipbin.deliver_all([call.ai_message("user", "Hello?"), call.ai_message("assistant", "Hi there.")])
    hangup = call.hangup()
    down = voipbin_settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/x", "background_tasks": False}
    )
    async with running(down) as http:
        accepted = await Voipbin(http, voipbin_api).deliver(hangup)
    before = await sql("SELECT id FROM calls")

    async def archived_now() -> bool:
        return bool(await sql("SELECT id FROM calls"))

    async with running(voipbin_settings.model_copy(update={"flush_interval_s": 0.05})):
        await eventually(archived_now)
    await voipbin.deliver_all([hangup])  # VoIPBin's own retry changes nothing

    # Stored (pending in Redis) is delivered: a 5xx would only make VoIPBin retry what is already kept.
    assert accepted.status_code == 200
    assert before == []
    assert [text for _, text in await archived(sql, call)][1:] == ["Hello?", "Hi there."]


async def test_a_summary_naming_only_its_activeflow_waits_for_the_call(voipbin: Voipbin, sql: Rows) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(call, activeflow=False)
    summary = call.summary("The caller asked about order 4417.")
    summary["data"].update(reference_type="aicall", reference_id=voipbin_wire.ZERO_UUID)

    outcomes = await voipbin.deliver_all([summary, call.created(), call.hangup()])

    assert outcomes[0] == "held"
    [row] = await sql("SELECT summary FROM calls WHERE external_id = :id", id=call.call_id)
    assert row.summary == "The caller asked about order 4417."


async def test_with_raw_numbers_kept_the_hangup_stores_the_callers_number(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, sql: Rows
) -> None:
    keeping = voipbin_settings.model_copy(update={"store_raw_numbers": True})
    call = ScriptedCall()
    async with running(keeping) as http:
        platform = Voipbin(http, voipbin_api)
        await started(platform, call)
        await platform.deliver_all([call.hangup()])

    assert [r.caller_number for r in await sql("SELECT caller_number FROM callers")] == [call.caller]


async def test_a_call_event_with_a_withheld_number_still_links_its_activeflow(
    voipbin: Voipbin, sql: Rows
) -> None:
    call = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(call, activeflow=False)
    created = call.created()
    created["data"]["source"] = {"type": "tel", "target": "anonymous"}

    outcomes = await voipbin.deliver_all([call.ai_message("user", "Hello?"), created, call.hangup()])

    assert outcomes == ["held", "applied", "applied"]
    assert (await archived(sql, call))[-1] == ("caller", "Hello?")


async def test_a_signed_event_nested_too_deep_is_refused_with_422_naming_the_field(voipbin: Voipbin) -> None:
    body = b'{"type": "call_created", "data": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"

    response = await voipbin.deliver_body(body)

    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("unstorable_input", "data")


async def test_a_transcript_holding_a_nul_is_refused_with_422_and_the_call_is_archived_without_it(
    voipbin: Voipbin, sql: Rows
) -> None:
    call = ScriptedCall()
    await started(voipbin, call)
    await voipbin.deliver_all([call.transcribe_created()])

    refused = await voipbin.deliver(call.transcript("My order\u0000 4417"))
    await voipbin.deliver_all([call.hangup()])

    assert (refused.status_code, refused.json()["field"]) == (422, "data.message")
    assert [role for role, _ in await archived(sql, call)] == ["bot"]  # the greeting alone
