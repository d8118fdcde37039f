"""The service killed mid-call, or stopped gracefully: every acknowledged turn still reaches Postgres."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from callmemory.settings import Settings
from support.outage import OutageThread, through_url
from support.serving import event, free_port, service_env, serving, stub_llm_process
from support.waiting import eventually


async def test_after_a_sigkill_mid_call_every_acknowledged_turn_is_archived(
    settings: Settings, sql: Callable[..., Any], tmp_path: Path
) -> None:
    env = service_env(settings, CALLMEMORY_IDLE_CALL_S="1", CALLMEMORY_SWEEP_INTERVAL_S="0.2")
    port = free_port()
    with serving(tmp_path, port, env) as (http, process):
        acknowledged = [http.post("/webhook/call", json=event("call.ringing", "k-1"))]
        for line in ("My flight was cancelled.", "I need a refund."):
            speech = event("call.speech_recognized", "k-1", speech=line)
            acknowledged.append(http.post("/webhook/call", json=speech))
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    with serving(tmp_path, port, env):

        async def archived() -> bool:
            return bool(await sql("SELECT * FROM calls"))

        await eventually(archived)

    assert [r.status_code for r in acknowledged] == [200, 200, 200]
    rows = await sql("SELECT role, text FROM turns ORDER BY seq")
    heard = [r.json()["actions"][0]["text"] for r in acknowledged]
    assert [r.text for r in rows] == [
        heard[0],
        "My flight was cancelled.",
        heard[1],
        "I need a refund.",
        heard[2],
    ]
    (call,) = await sql("SELECT end_reason FROM calls")
    assert call.end_reason == "idle_timeout"


async def test_sigterm_finishes_the_request_in_flight_and_keeps_its_turns(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    with stub_llm_process(delay_ms=1500) as llm_url:
        env = service_env(settings, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm_url)
        with serving(tmp_path, free_port(), env) as (http, process), ThreadPoolExecutor(1) as pool:
            http.post("/webhook/call", json=event("call.ringing", "t-1"))
            speech = event("call.speech_recognized", "t-1", speech="Is my order on its way?")
            in_flight = pool.submit(http.post, "/webhook/call", json=speech)
            await asyncio.sleep(0.5)  # the request is waiting on the LLM
            process.send_signal(signal.SIGTERM)
            answered = in_flight.result(timeout=30)
            process.wait(30)
            with pytest.raises(httpx.TransportError):  # nothing is accepted after the shutdown
                http.post("/webhook/call", json=speech)

    assert answered.status_code == 200
    assert answered.json()["actions"][0]["text"] == "You said: Is my order on its way?"
    assert process.returncode == 0
    (log_key,) = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:log")]
    assert len(await redis.lrange(log_key, 0, -1)) == 3  # greeting, the caller, the answer


async def test_sigterm_archives_calls_still_pending_before_the_service_exits(
    settings: Settings, sql: Callable[..., Any], tmp_path: Path
) -> None:
    assert settings.database_url
    with OutageThread(settings.database_url).running() as postgres:
        through = through_url(settings.database_url, postgres.port)
        # No flusher pass during the test: only the shutdown can archive the call.
        env = {**service_env(settings, CALLMEMORY_FLUSH_INTERVAL_S="3600"), "DATABASE_URL": through}
        with serving(tmp_path, free_port(), env) as (http, process):
            http.post("/webhook/call", json=event("call.ringing", "p-1"))
            http.post("/webhook/call", json=event("call.speech_recognized", "p-1", speech="Keep this safe."))
            postgres.cut()
            hangup = http.post("/webhook/call", json=event("call.hangup", "p-1"))
            postgres.restore()
            process.send_signal(signal.SIGTERM)
            process.wait(30)

    assert hangup.json() == {"status": "archive_pending"}
    assert process.returncode == 0
    said = [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller'")]
    assert said == ["Keep this safe."]
