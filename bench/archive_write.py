"""The CPU and time this process spends archiving one finished call: the hangup's Postgres write.

    ./dev run python bench/archive_write.py [--calls 2000] [--turns 9] [--callers 100] [--concurrency 1]

Archives `--calls` calls of `--turns` turns each, spread over `--callers` callers, through the Archive and
the engine the service builds (same pool settings), `--concurrency` at a time; prints calls/s and this
process's CPU ms per call (time.process_time: Python, SQLAlchemy and asyncpg, not Postgres itself).
Uses the servers the tests use, in a database of its own, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.db.session import create_engine
from callmemory.memory.archive import Archive
from callmemory.memory.types import CallRecord, Turn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.services import scratch_stores  # the tests' choice of servers, made importable above

BOT = "+14155550000"
START = datetime(2024, 1, 1, tzinfo=UTC)
LINE = "The router in the attic drops the connection every evening around eight; account 99812."


def record(n: int, callers: int, turns: int) -> CallRecord:
    at = START + timedelta(minutes=n)
    call = CallRef("bench", f"call-{n}")
    return CallRecord(
        call=call,
        caller=CallerId(bot_number=BOT, caller_hash=f"{n % callers:064x}"),
        started_at=at,
        ended_at=at + timedelta(minutes=3),
        end_reason="completed",
        turns=tuple(
            Turn(
                seq=i + 1,
                role=Role.CALLER if i % 2 else Role.BOT,
                text=LINE,
                at=at + timedelta(seconds=i),
                call_id=call.call_id,
            )
            for i in range(turns)
        ),
        topic="my internet again",
    )


async def main(calls: int, turns: int, callers: int, concurrency: int) -> None:
    async with scratch_stores("archbench") as (url, _redis_url, _prefix):
        engine = create_engine(url, pool_size=max(concurrency, 1))
        archive = Archive(engine)
        records = [record(n, callers, turns) for n in range(calls)]
        # Warm-up, outside the measurement: connections, prepared statements, SQLAlchemy's caches.
        for r in records[: 2 * concurrency]:
            await archive.archive_call(r)
        todo = iter(records[2 * concurrency :])
        measured = calls - 2 * concurrency

        async def worker() -> None:
            for r in todo:
                assert await archive.archive_call(r)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await engine.dispose()
    print(
        f"{measured} calls of {turns} turns, {concurrency} at a time: {measured / wall:.0f} calls/s, "
        f"{1000 * cpu / measured:.2f} ms CPU per call"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=9)
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.turns, args.callers, args.concurrency))
