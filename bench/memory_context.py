"""Replays callers with 1, 10, 100 and 1,000 earlier calls and prints, for each, the memory context's
size in tokens and how long reading it takes: from Redis (hot) and after a Redis miss (rehydrated from
Postgres in one query). The context read is what a turn waits for before its LLM request: memory read +
prompt assembly under the token budget.

    ./dev run python bench/memory_context.py [--reads 300] [--cold-reads 50]

Uses the servers the tests use (127.0.0.1, TEST_POSTGRES_URL / TEST_REDIS_URL, or embedded ones), in a
database and key prefix of its own, removed afterwards. Calls are seeded through the Archive and
summarised through the summary queue with a fixed summary (no LLM): the rows the webhook and the
worker write, without 1,111 calls over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.db.session import create_sessionmaker
from callmemory.memory.archive import Archive
from callmemory.memory.types import CallRecord, Turn
from callmemory.services import Services, open_services
from callmemory.summaries.queue import SummaryQueue, SummaryResult

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.services import scratch_settings, scratch_stores  # the tests' servers, importable above

BOT = "+14155550000"
HISTORY = (1, 10, 100, 1000)
START = datetime(2024, 1, 1, tzinfo=UTC)

CALLER_LINE = (
    "Hi, it's about my internet again: call {n}. The router in the attic drops the connection every evening "
    "around eight, and the light turns orange. My account number is 99812."
)
BOT_LINE = (
    "Thanks for calling back. I can see account 99812. I'll reset the line from our side and book a "
    "technician if it drops again tonight; you'll get a text with the time."
)
SUMMARY = SummaryResult(
    call_summary="Router in the attic drops every evening; line reset, technician offered if it recurs.",
    caller_summary=(
        "Ada, account 99812, fibre customer. Her router in the attic drops the connection most evenings "
        "around eight with an orange light. We reset the line several times and promised a technician "
        "visit if it recurs; she prefers text messages to calls and mornings for appointments."
    ),
    profile={
        "name": "Ada",
        "open_issues": ["router in the attic drops every evening"],
        "promises": ["technician visit if the connection drops again"],
        "preferences": ["texts rather than calls", "morning appointments"],
    },
    next_greeting="Welcome back, Ada! Is the router in the attic behaving now?",
)


async def seed(services: Services, caller: CallerId, calls: int) -> None:
    archive = Archive(services.engine)
    for n in range(calls):
        at = START + timedelta(hours=n)
        call = CallRef("bench", f"{caller.caller_hash[:8]}-{n}")
        lines = [(Role.BOT, "Welcome back!"), (Role.CALLER, CALLER_LINE.format(n=n)), (Role.BOT, BOT_LINE)]
        turns = tuple(
            Turn(seq=i + 1, role=role, text=text, at=at + timedelta(seconds=i), call_id=call.call_id)
            for i, (role, text) in enumerate(lines)
        )
        await archive.archive_call(
            CallRecord(
                call=call,
                caller=caller,
                started_at=at,
                ended_at=at + timedelta(minutes=3),
                end_reason="completed",
                turns=turns,
                topic="my internet again",
            )
        )


async def summarise_all(services: Services) -> None:
    queue = SummaryQueue(create_sessionmaker(services.engine))
    while task := await queue.claim(lease_s=60, max_attempts=5):
        await queue.complete(task, SUMMARY)


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000


async def context_read(services: Services, caller: CallerId) -> tuple[float, int]:
    started = time.perf_counter()
    memory = await services.memory.memory_for(caller)
    prompt = services.prompt.build(memory, current_call_id=None)
    return time.perf_counter() - started, prompt.memory_tokens


async def measure(services: Services, redis: Redis, caller: CallerId, reads: int, cold_reads: int) -> str:
    hot_keys = [
        f"{services.settings.redis_prefix}:{{{caller.caller_hash}}}:{k}" for k in ("meta", "turns", "sums")
    ]
    cold: list[float] = []
    for _ in range(cold_reads):
        await redis.delete(*hot_keys)
        elapsed, _ = await context_read(services, caller)
        cold.append(elapsed)
    hot: list[float] = []
    tokens = 0
    for _ in range(reads):
        elapsed, tokens = await context_read(services, caller)
        hot.append(elapsed)
    (hot50, hot95), (cold50, cold95) = _ms(hot), _ms(cold)
    return f"{tokens:>14} {hot50:>11.2f} {hot95:>11.2f} {cold50:>12.2f} {cold95:>12.2f}"


async def main(reads: int, cold_reads: int) -> None:
    async with scratch_stores("bench") as stores:
        settings = scratch_settings(stores, openai_api_key=None, summary_worker=False)
        redis = Redis.from_url(stores[1], decode_responses=True)
        async with open_services(settings) as services:
            callers = {n: services.memory.address(BOT, f"+1415555{n:04d}") for n in HISTORY}
            t0 = time.perf_counter()
            for n, caller in callers.items():
                await seed(services, caller, n)
            await summarise_all(services)
            print(
                f"seeded {sum(HISTORY)} calls through the Archive and summarised them in "
                f"{time.perf_counter() - t0:.1f} s; budget {settings.memory_context_tokens} tokens; "
                f"{reads} hot reads and {cold_reads} cold reads per caller"
            )
            print(
                f"{'prior calls':>11} {'ctx tokens':>14} {'hot p50 ms':>11} {'hot p95 ms':>11} "
                f"{'cold p50 ms':>12} {'cold p95 ms':>12}"
            )
            for n, caller in callers.items():
                print(f"{n:>11} " + await measure(services, redis, caller, reads, cold_reads))
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=300, help="hot context reads per caller")
    parser.add_argument("--cold-reads", type=int, default=50, help="reads after a Redis miss per caller")
    args = parser.parse_args()
    asyncio.run(main(args.reads, args.cold_reads))
