"""How much Redis memory a caller takes and how much Postgres a call takes, measured at default settings.

    ./dev run python bench/sizing.py [--callers 100] [--calls 10] [--turns 4]

Drives `--callers` callers through `--calls` seed-format calls each (ringing, `--turns` caller lines
answered by the LLM, hangup) against the app in-process, with the stub LLM (replies of a realistic length,
and its mechanical summaries through the real summary worker). Then prints:
- Redis: MEMORY USAGE of every key, by key family, per caller and per call; and of a live call's keys,
  measured on a second round of calls left open;
- Postgres: rows and pg_total_relation_size per table, as the growth since the empty schema, per call.

Uses the servers the tests use (127.0.0.1, TEST_POSTGRES_URL / TEST_REDIS_URL, or embedded ones), in a
database and key prefix of its own, removed afterwards. Postgres grows by 8 kB pages: run a few hundred calls
or more (the defaults make 1,000) before reading bytes per call.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from redis.asyncio import Redis

from callmemory.app import create_app
from callmemory.devtools.stub_llm import StubLLM, StubServer
from callmemory.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.services import scratch_settings, scratch_stores  # the tests' servers, importable above

BOT = "+14155550000"
TABLES = ("callers", "calls", "turns", "summary_jobs", "erasures")
CALLER_LINES = (
    "Hi, it's about my internet again. The router in the attic drops the connection every evening.",
    "It happens around eight, the light turns orange and comes back after ten minutes or so.",
    "My account number is 99812, the contract is in the name of Ada Lovelace.",
    "A text message is best, I'm at work during the day. Mornings are fine for a technician.",
    "Could you also check whether I'm still on the old tariff? I think the new one is cheaper.",
    "Thanks, that's all for today. Goodbye.",
)
BOT_REPLY = (
    "Thanks, I can see account 99812. I've reset the line from our side; if it drops again tonight, "
    "I'll book a technician for a morning and send you the time by text."
)
# A hash of 64 hex characters, or a call id of ours: what varies between keys of one family.
_VARYING = re.compile(r"\{[0-9a-f]{64}\}|\{c:[^}]+\}|sz-\d+-\d+(-open)?")


def family(key: str, prefix: str) -> str:
    varying = _VARYING.sub(
        lambda m: "{h}" if m.group(0).startswith("{") else "<id>", key.removeprefix(prefix)
    )
    return f"cm{varying}"


async def one_call(http: httpx.AsyncClient, caller: str, call_id: str, turns: int, *, hang_up: bool) -> None:
    async def send(event: dict[str, Any]) -> None:
        answer = await http.post("/webhook/call", json={"call_id": call_id, "from": caller, **event})
        answer.raise_for_status()

    await send({"type": "call.ringing", "to": BOT})
    for n in range(turns):
        await send({"type": "call.speech_recognized", "speech": CALLER_LINES[n % len(CALLER_LINES)]})
    if hang_up:
        await send({"type": "call.hangup", "reason": "caller_hangup"})


def callers(count: int) -> Iterator[tuple[int, str]]:
    for n in range(count):
        yield n, f"+1415556{n:04d}"


async def drive(http: httpx.AsyncClient, count: int, calls: int, turns: int, *, hang_up: bool) -> None:
    async def caller_loop(n: int, number: str) -> None:
        for c in range(calls):
            suffix = "" if hang_up else "-open"
            await one_call(http, number, f"sz-{n}-{c}{suffix}", turns, hang_up=hang_up)

    # Callers at once, each caller's calls one after another, as on a real line.
    await asyncio.gather(*(caller_loop(n, number) for n, number in callers(count)))


async def redis_usage(redis: Redis, prefix: str) -> dict[str, tuple[int, int]]:
    """Key family -> (keys, bytes of MEMORY USAGE)."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        usage = await redis.memory_usage(key, samples=0)
        entry = found[family(key, prefix)]
        entry[0] += 1
        entry[1] += int(usage or 0)
    return {k: (v[0], v[1]) for k, v in sorted(found.items())}


async def postgres_usage(url: str) -> dict[str, tuple[int, int]]:
    """Table -> (rows, pg_total_relation_size: table, indexes and TOAST)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("VACUUM ANALYZE")  # settle the free-space and visibility maps first
        sizes = {}
        for table in TABLES:
            rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            sizes[table] = (int(rows), int(size))
        return sizes
    finally:
        await conn.close()


async def summaries_pending(url: str) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM summary_jobs"))
    finally:
        await conn.close()


@asynccontextmanager
async def app_client(settings: Settings) -> Any:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://sizing") as http,
    ):
        yield http


def print_redis(title: str, usage: dict[str, tuple[int, int]], per: int, per_name: str) -> None:
    print(f"\n{title}")
    print(f"  {'key family':<42} {'keys':>6} {'bytes':>10} {'bytes/' + per_name:>14}")
    for name, (keys, size) in usage.items():
        print(f"  {name:<42} {keys:>6} {size:>10} {size / per:>14.0f}")
    total = sum(size for _, size in usage.values())
    print(f"  {'total':<42} {sum(k for k, _ in usage.values()):>6} {total:>10} {total / per:>14.0f}")


async def main(count: int, calls: int, turns: int) -> None:
    stub = StubServer(StubLLM(reply=lambda _: BOT_REPLY))
    async with scratch_stores("sizing") as (url, redis_url, prefix):
        redis = Redis.from_url(redis_url, decode_responses=True)
        empty = await postgres_usage(url)
        async with stub.running() as llm:
            settings = scratch_settings(
                (url, redis_url, prefix),
                openai_api_key=SecretStr("sk-sizing"),
                openai_base_url=llm.base_url,
                summary_poll_s=0.2,
            )
            async with app_client(settings) as http:
                started = time.perf_counter()
                await drive(http, count, calls, turns, hang_up=True)
                # The worker runs in the app's lifespan; its queue is a table, which has nothing to await.
                while await summaries_pending(url):  # noqa: ASYNC110 - polling a Postgres table
                    await asyncio.sleep(0.5)
                elapsed = time.perf_counter() - started
                ended = await redis_usage(redis, prefix)
                archived = await postgres_usage(url)
                await drive(http, count, 1, turns, hang_up=False)
                live = await redis_usage(redis, prefix)
        await redis.aclose()
        total_calls = count * calls
        print(
            f"{count} callers x {calls} calls ({turns} caller lines each, greeting + answers: "
            f"{2 * turns + 1} turns a call), summarised, in {elapsed:.0f} s; default settings "
            f"(recent_exchanges {settings.recent_exchanges}, recent_call_summaries "
            f"{settings.recent_call_summaries}, memory_ttl_s {settings.memory_ttl_s}, call_ttl_s "
            f"{settings.call_ttl_s})"
        )
        print_redis("Redis after the calls ended (per caller):", ended, count, "caller")
        grown = {k: v for k, v in live.items() if v != ended.get(k)}
        print_redis(
            "Redis while each caller has one call in progress (what changed; per live call):",
            {
                k: (keys - ended.get(k, (0, 0))[0], size - ended.get(k, (0, 0))[1])
                for k, (keys, size) in grown.items()
            },
            count,
            "call",
        )
        print(f"\nPostgres growth since the empty schema, {total_calls} archived calls:")
        print(f"  {'table':<14} {'rows':>8} {'rows/call':>10} {'bytes':>12} {'bytes/call':>11}")
        for table in TABLES:
            rows, size = archived[table]
            grown_size = size - empty[table][1]
            per_call = grown_size / total_calls
            print(f"  {table:<14} {rows:>8} {rows / total_calls:>10.1f} {grown_size:>12} {per_call:>11.0f}")
        grown_total = sum(archived[t][1] - empty[t][1] for t in TABLES)
        print(f"  {'total':<14} {'':>8} {'':>10} {grown_total:>12} {grown_total / total_calls:>11.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--calls", type=int, default=10, help="calls per caller")
    parser.add_argument("--turns", type=int, default=4, help="caller lines per call (each answered)")
    args = parser.parse_args()
    asyncio.run(main(args.callers, args.calls, args.turns))
