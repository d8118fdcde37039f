"""/metrics, scraped after traffic: the counters match the events sent, per app."""

from __future__ import annotations

import asyncio

import httpx

from callmemory.services import open_services
from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.metrics import Scrape, scrape
from support.outage import Outage, through
from support.phone import Phone
from support.voipbin import ScriptedCall, Voipbin
from support.waiting import eventually

EVENTS = "callmemory_webhook_events_total"


async def test_seed_webhook_events_are_counted_by_type_and_outcome(
    client: httpx.AsyncClient, phone: Phone
) -> None:
    await phone.call("My parcel is late.", "It was due on Monday.")
    await phone.send({"type": "call.dtmf", "call_id": "x", "from": phone.caller})
    await phone.send({"type": "call.speech_recognized", "call_id": "x", "from": phone.caller})
    await client.post("/webhook/call", content=b"{not json")

    seen = await scrape(client)
    seed = seen.webhooks("seed")

    assert seed("ringing", "answered") == 1
    assert seed("speech", "answered") == 2
    assert seed("hangup", "archived") == 1
    assert seed("ignored", "ignored") == 1
    assert seed("unparsed", "invalid_event") == 1
    assert seed("unparsed", "malformed_body") == 1
    assert sum(v for (name, _), v in seen.samples.items() if name == EVENTS) == 7


async def test_voipbin_fetches_and_events_are_counted_by_type_and_outcome(voipbin: Voipbin) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)
    await voipbin.deliver_all([call.transcribe_created(), call.transcript("Where is my refund?")])
    await voipbin.deliver(call.transcribe_created())  # a redelivery
    await voipbin.deliver({"type": "queue_updated", "data": {"id": "q-1"}})
    await voipbin.deliver_all([call.hangup()])

    seen = await scrape(voipbin.http)
    event = seen.webhooks("voipbin")

    assert event("fetch", "ok") == 1
    assert event("transcribe_created", "applied") == 1
    assert event("transcribe_created", "duplicate") == 1
    assert event("transcript_created", "applied") == 1
    assert event("other", "ignored") == 1
    assert event("call_hangup", "applied") == 1


async def test_a_refused_request_is_counted_under_its_error_code(voipbin: Voipbin) -> None:
    await voipbin.fetch(ScriptedCall(), token="wrong-token")

    seen = await scrape(voipbin.http)

    assert seen.value(EVENTS, platform="voipbin", type="fetch", outcome="unauthorized") == 1


async def test_memory_reads_llm_requests_and_archive_writes_are_timed(
    client: httpx.AsyncClient, phone: Phone, llm: FakeLLM
) -> None:
    await phone.call("I need a new card.", "Mine was stolen.")  # a new caller: one read, a rehydration
    await phone.call("Did the card ship?")  # a returning caller: read hot

    seen = await scrape(client)

    assert seen.value("callmemory_memory_read_seconds_count", source="hot") == 2
    assert seen.value("callmemory_memory_read_seconds_count", source="rehydrate") == 1
    assert seen.value("callmemory_rehydrations_total") == 1
    assert seen.value("callmemory_llm_request_seconds_count", purpose="answer", outcome="ok") == 3
    assert seen.value("callmemory_archive_write_seconds_count", outcome="stored") == 2
    assert seen.value("callmemory_llm_fallbacks_total", reason="error") == 0


async def test_llm_fallbacks_are_counted_by_reason(
    client: httpx.AsyncClient, phone: Phone, llm: FakeLLM
) -> None:
    llm.status = 500
    await phone.call("Hello?", "Are you there?")

    seen = await scrape(client)

    assert seen.value("callmemory_llm_fallbacks_total", reason="error") == 2
    assert seen.value("callmemory_llm_request_seconds_count", purpose="answer", outcome="fallback") == 2


async def test_answers_are_counted_by_form_and_their_shaping_by_reason(
    client: httpx.AsyncClient, phone: Phone, llm: FakeLLM
) -> None:
    replies = iter(["Sure, done.", "I sent it to [address]. Anything else?", "[Your Name]"])
    llm.reply = lambda messages: next(replies)
    await phone.call("One?", "Two?", "Three?")

    seen = await scrape(client)

    forms = ("as_written", "shaped", "unsayable")
    assert [seen.value("callmemory_answers_total", form=form) for form in forms] == [1, 1, 1]
    assert seen.value("callmemory_answers_shaped_total", reason="placeholder") == 2
    assert seen.value("callmemory_llm_fallbacks_total", reason="unsayable") == 1


async def test_pending_archives_and_the_flusher_that_archives_them_are_measured(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(through(settings, postgres, flush_interval_s=0.05, flush_backoff_max_s=0.2)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await postgres.cut()
        await phone.hang_up(call_id)
        during = await scrape(http)
        await postgres.restore()

        async def flushed() -> bool:
            return (await scrape(http)).value("callmemory_flushed_archives_total") == 1

        await eventually(flushed)
        after = await scrape(http)

    assert during.value("callmemory_pending_archives") == 1
    assert during.value("callmemory_archive_write_seconds_count", outcome="failed") == 1
    assert after.value("callmemory_pending_archives") == 0
    assert after.value("callmemory_flusher_runs_total") >= 1


async def test_sweeper_runs_and_swept_calls_are_counted(settings: Settings, llm: FakeLLM) -> None:
    async with running(settings.model_copy(update={"idle_call_s": 0.5, "sweep_interval_s": 0.05})) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Hello, is anybody there?")

        async def swept() -> bool:
            return (await scrape(http)).value("callmemory_calls_swept_total") == 1

        await eventually(swept)
        seen = await scrape(http)

    assert seen.value("callmemory_sweeper_runs_total") >= 1
    assert seen.value(EVENTS, platform="seed", type="hangup", outcome="archived") == 0


async def test_summary_jobs_are_counted_done_and_failed(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    await phone.call("My account number is 99812.")
    await phone.call("It is about the same account.")
    async with open_services(settings.model_copy(update={"summary_retry_base_s": 60})) as services:
        assert services.summaries is not None
        await services.summaries.run_once()
        llm.status = 500
        await services.summaries.run_once()
        seen = Scrape(services.metrics.exposition()[0].decode())

    assert seen.value("callmemory_summary_jobs_total", outcome="done") == 1
    assert seen.value("callmemory_summary_jobs_total", outcome="failed") == 1
    assert seen.value("callmemory_llm_request_seconds_count", purpose="summary", outcome="ok") == 1
    assert seen.value("callmemory_llm_request_seconds_count", purpose="summary", outcome="failed") == 1


async def test_each_app_counts_only_its_own_traffic(settings: Settings, llm: FakeLLM) -> None:
    async with running(settings) as first, running(settings) as second:
        await Phone(first).call("Only the first app hears this.")
        seen_first, seen_second = await asyncio.gather(scrape(first), scrape(second))

    assert seen_first.value(EVENTS, platform="seed", type="ringing", outcome="answered") == 1
    assert seen_second.value(EVENTS, platform="seed", type="ringing", outcome="answered") == 0


async def test_a_request_id_is_taken_from_the_request_or_made_and_returned(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    made = await client.get("/healthz")
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})

    assert given.headers["x-request-id"] == "lb-7f3a.42"
    assert len(made.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] not in {"", "bad id\twith spaces"}


async def test_metrics_can_be_switched_off(settings: Settings, llm: FakeLLM) -> None:
    async with running(settings.model_copy(update={"metrics_enabled": False})) as http:
        response = await http.get("/metrics")

    assert response.status_code == 404


async def test_calls_are_counted_by_trust_and_what_the_disclosure_made_of_them(
    guarded: httpx.AsyncClient,
) -> None:
    phone = Phone(guarded)
    await phone.ring(verified=True)
    await phone.ring(verified=True)
    apart, _ = await phone.ring()
    await phone.ring(apart)  # a redelivered ringing is not another call
    await phone.verify(apart)

    seen = await scrape(guarded)

    trust = "callmemory_calls_by_trust_total"
    assert seen.value(trust, trust="verified", memory="disclosed") == 2
    assert seen.value(trust, trust="unverified", memory="kept_apart") == 1
    assert seen.value(trust, trust="unverified", memory="disclosed") == 0
    assert seen.value("callmemory_calls_verified_during_the_call_total") == 1
    assert seen.webhooks("seed")("caller_verified", "verified") == 1
