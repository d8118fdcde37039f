"""A call Postgres refuses for its own data is set aside, never holding back the others, and kept."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.settings import Settings
from support.app import pending_in_redis, running
from support.cli import callmemory, cli_env
from support.llm import FakeLLM
from support.metrics import scrape
from support.outage import Outage, through
from support.phone import Phone
from support.waiting import eventually

Rows = Callable[..., Any]
# Postgres text cannot hold a NUL. The webhooks will refuse it at the door; what is already in Redis
# (or any other value Postgres refuses) must still not block the archive.
POISON = "My PIN is 12\x0034."


async def poison(redis: Redis, settings: Settings, call_id: str) -> None:
    """Put a NUL into the call's transcript in Redis, as an older version let through."""
    [log] = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:call:seed:{call_id}:log")]
    turns = await redis.lrange(log, 0, -1)
    n, turn = next((n, json.loads(t)) for n, t in enumerate(turns) if json.loads(t)["r"] == "caller")
    await redis.lset(log, n, json.dumps({**turn, "t": POISON}, ensure_ascii=False))


async def quarantined_call(phone: Phone, redis: Redis, settings: Settings) -> str:
    """A call Postgres refused until it was quarantined, by the flusher of the app `phone` calls."""
    call_id, _ = await phone.ring()
    await phone.say(call_id, "My PIN is 1234.")
    await poison(redis, settings, call_id)
    assert await phone.hang_up(call_id) == {"status": "archive_pending"}

    async def set_aside() -> bool:
        return bool((await phone.http.get("/readyz")).json()["quarantined"] == 1)

    await eventually(set_aside)
    return call_id


def quick_flusher(settings: Settings, postgres: Outage | None = None, **overrides: Any) -> Settings:
    fast = {"flush_interval_s": 0.05, "flush_backoff_max_s": 0.2, **overrides}
    return through(settings, postgres, **fast) if postgres else settings.model_copy(update=fast)


async def test_a_refused_call_does_not_hold_back_the_twenty_pending_behind_it(
    settings: Settings, llm: FakeLLM, postgres: Outage, redis: Redis, sql: Rows
) -> None:
    # Never quarantined during the test: the twenty must get past the refused call, not wait until it is
    # set aside.
    async with running(quick_flusher(settings, postgres, archive_refusals_max=10**6)) as http:
        phone = Phone(http)
        calls = []
        for n in range(21):
            phone.caller = f"+1415555{2000 + n}"
            call_id, _ = await phone.ring()
            await phone.say(call_id, f"Caller {n} here.")
            calls.append((phone.caller, call_id))
        await poison(redis, settings, calls[0][1])
        await postgres.cut()
        for caller, call_id in calls:  # the poisoned call first: it heads the pending list
            phone.caller = caller
            assert await phone.hang_up(call_id) == {"status": "archive_pending"}
        await postgres.restore()
        restored = time.monotonic()

        async def twenty_archived() -> bool:
            return len(await sql("SELECT id FROM calls")) == 20

        await eventually(twenty_archived)
        took = time.monotonic() - restored
        ready = (await http.get("/readyz")).json()

    print(f"\n20 of 20 normal calls archived {took:.2f} s after Postgres came back")
    archived = {r.external_id for r in await sql("SELECT external_id FROM calls")}
    assert archived == {call_id for _, call_id in calls[1:]}
    assert (ready["pending_archives"], ready["quarantined"]) == (1, 0)  # the refused call, kept and retried


async def test_a_call_postgres_keeps_refusing_is_quarantined_with_its_data_kept_without_expiry(
    settings: Settings, llm: FakeLLM, redis: Redis, sql: Rows
) -> None:
    async with running(quick_flusher(settings)) as http:
        call_id = await quarantined_call(Phone(http), redis, settings)
        ready = (await http.get("/readyz")).json()

    assert ready["status"] == "degraded"
    assert (ready["checks"], ready["quarantined"], ready["pending_archives"]) == (
        {"redis": True, "postgres": True},
        1,
        0,
    )
    assert await sql("SELECT id FROM calls") == []
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:call:seed:{call_id}*")]
    kept = [k for k in keys if not k.endswith(":ev")]
    assert len(kept) == 2  # the call's state and its transcript
    assert [await redis.ttl(k) for k in kept] == [-1, -1]
    [log] = [k for k in kept if k.endswith(":log")]
    assert POISON in [json.loads(t)["t"] for t in await redis.lrange(log, 0, -1)]


async def test_an_outage_however_long_quarantines_nothing(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(quick_flusher(settings, postgres)) as http:
        phone = Phone(http)
        call_id, _ = await phone.ring()
        await postgres.cut()
        await phone.hang_up(call_id)

        async def many_failed_passes() -> bool:
            runs = (await scrape(http)).value("callmemory_flusher_runs_total")
            return runs > 2 * settings.archive_refusals_max

        await eventually(many_failed_passes)
        ready = (await http.get("/readyz")).json()

    assert (ready["pending_archives"], ready["quarantined"]) == (1, 0)


async def test_quarantined_calls_and_refusals_are_measured(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(quick_flusher(settings)) as http:
        await quarantined_call(Phone(http), redis, settings)
        metrics = await scrape(http)

    assert metrics.value("callmemory_quarantined_archives") == 1
    assert metrics.value("callmemory_archive_refusals_total") == settings.archive_refusals_max


async def test_quarantine_list_names_the_refused_call_and_postgres_reason(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(quick_flusher(settings)) as http:
        call_id = await quarantined_call(Phone(http), redis, settings)

    ran = await callmemory(cli_env(settings), "quarantine", "list")

    assert ran.status == 0, ran.stderr
    [entry] = json.loads(ran.stdout)
    assert (entry["call_id"], entry["refusals"], entry["turns"]) == (call_id, 3, 3)
    assert "22021" in entry["reason"]  # Postgres' character_not_in_repertoire
    assert "1234" not in ran.stdout  # a listing shows no turn's text


async def test_quarantine_export_holds_the_refused_calls_whole_transcript(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(quick_flusher(settings)) as http:
        call_id = await quarantined_call(Phone(http), redis, settings)

    ran = await callmemory(cli_env(settings), "quarantine", "export", "--call", call_id)

    assert ran.status == 0, ran.stderr
    [call] = json.loads(ran.stdout)["calls"]
    assert [t["text"] for t in call["transcript"]][1:] == [POISON, "You said: My PIN is 1234."]


async def test_quarantine_retry_archives_the_call_once_postgres_can_take_it(
    settings: Settings, llm: FakeLLM, redis: Redis, sql: Rows
) -> None:
    async with running(quick_flusher(settings)) as http:
        call_id = await quarantined_call(Phone(http), redis, settings)
    [log] = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*:call:seed:{call_id}:log")]
    turns = [json.loads(t) for t in await redis.lrange(log, 0, -1)]
    await redis.lset(log, 1, json.dumps({**turns[1], "t": POISON.replace("\x00", "")}))  # repaired

    ran = await callmemory(cli_env(settings), "quarantine", "retry", "--call", call_id)

    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == [{"platform": "seed", "call_id": call_id, "outcome": "archived"}]
    assert [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller'")] == ["My PIN is 1234."]
    assert await redis.hlen(f"{settings.redis_prefix}:quarantine") == 0


async def test_quarantine_retry_of_a_call_still_refused_reports_it_and_keeps_it(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(quick_flusher(settings)) as http:
        call_id = await quarantined_call(Phone(http), redis, settings)

    ran = await callmemory(cli_env(settings), "quarantine", "retry", "--all")

    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == [{"platform": "seed", "call_id": call_id, "outcome": "refused"}]
    assert await pending_in_redis(redis, settings.redis_prefix) == 1  # the flusher's again


async def test_an_erased_callers_quarantined_call_is_gone_from_the_quarantine(
    settings: Settings, llm: FakeLLM, redis: Redis
) -> None:
    async with running(quick_flusher(settings)) as http:
        phone = Phone(http)
        await quarantined_call(phone, redis, settings)

    ran = await callmemory(cli_env(settings), "forget", "--bot", "+14155550000", "--caller", phone.caller)

    assert ran.status == 0, ran.stderr
    assert await redis.hlen(f"{settings.redis_prefix}:quarantine") == 0
