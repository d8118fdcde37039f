"""What the archive search adds to a speech turn, for a caller with 1,000 archived calls in an archive of
1,000,000 turns: the speech turn's time with search off and on, side by side in one run, and the search
query on its own.

    ./dev run python bench/search.py [--turns 400] [--rounds 8]

Uses the servers the tests use (127.0.0.1, TEST_POSTGRES_URL / TEST_REDIS_URL, or embedded ones), in a
database and key prefix of its own, removed afterwards. The archive is built in SQL (generate_series),
with the search triggers off and the vectors and index built in bulk afterwards, as a restore would: the
caller under test has 1,000 calls of 10 turns, 9,900 other callers of the same bot have 10 calls each.
Every turn names one of 300 topic words, so a topic word is in about 33 of the caller's turns and a
common word ("reference") in all of them. Two apps run in this process on the same stores, one with
CALLMEMORY_SEARCH_ENABLED off, one on; the driver alternates between them in rounds, over ASGI, against
the stub LLM with no delay, so what differs is the search.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from callmemory.app import create_app
from callmemory.devtools.stub_llm import StubServer
from callmemory.services import open_services
from callmemory.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.services import scratch_settings, scratch_stores  # the tests' servers, importable above

BOT = "+14155550000"
CALLER = "+14155551234"
CALLS, TURNS_PER_CALL, OTHER_CALLERS, OTHER_CALLS = 1000, 10, 9900, 10
TOPICS = [f"topic{n:03d}" for n in range(300)]
WORDS = ["dishwasher", "invoice", "parcel", "router", "boiler", "passport", "insurance", "fridge", "printer"]
WORDS += ["landlord"]

# The words of a turn: a topic word (the 300 synthetic ones and ten real ones), a code, common words.
_SAY = (
    "'The ' || (CAST(:topics AS text[]))[1 + ({n} % 310)] || ' reference I was given is ' "
    "|| upper(substr(md5({n}::text), 1, 8)) || ', please note it down for next time.'"
)
BUILD = [
    "ALTER TABLE turns DISABLE TRIGGER turns_search",
    "ALTER TABLE calls DISABLE TRIGGER calls_search",
    "DROP INDEX ix_turns_search_keys",
    "INSERT INTO callers (id, bot_number, caller_hash, call_count) VALUES (1, :bot, :hash, {CALLS})",
    "INSERT INTO callers (id, bot_number, caller_hash, call_count) "
    "SELECT 1 + g, :bot, md5(g::text) || md5((-g)::text), {OTHER_CALLS} "
    "FROM generate_series(1, {OTHER_CALLERS}) g",
    # The caller under test: calls 1..1000, one a day; the others' calls after them.
    "INSERT INTO calls (id, platform, external_id, caller_id, started_at, ended_at, turn_count) "
    "SELECT g, 'bench', 'c' || g, "
    "CASE WHEN g <= {CALLS} THEN 1 ELSE 2 + (g - {CALLS} - 1) / {OTHER_CALLS} END, "
    "timestamptz '2023-01-01' + g * interval '1 hour', timestamptz '2023-01-01' + g * interval '1 hour' "
    "+ interval '3 minutes', {TURNS_PER_CALL} "
    "FROM generate_series(1, {CALLS} + {OTHER_CALLERS} * {OTHER_CALLS}) g",
    "INSERT INTO turns (call_id, seq, role, text, spoken_at, caller_id, search, search_keys) "
    "SELECT id, s, role, said, at, caller_id, words, callmemory_search_keys(caller_id, words) FROM ("
    "SELECT c.id, s, CASE WHEN s % 2 = 1 THEN 'caller' ELSE 'bot' END AS role, "
    + _SAY.format(n="(c.id * 10 + s)")
    + " AS said, c.started_at + s * interval '10 seconds' AS at, c.caller_id "
    "FROM calls c CROSS JOIN generate_series(1, {TURNS_PER_CALL}) s) t, "
    "LATERAL to_tsvector('english', said) AS words",
    "CREATE INDEX ix_turns_search_keys ON turns USING gin (search_keys) WITH (fastupdate = off)",
    "ALTER TABLE turns ENABLE TRIGGER turns_search",
    "ALTER TABLE calls ENABLE TRIGGER calls_search",
    "SELECT setval(pg_get_serial_sequence('callers', 'id'), (SELECT max(id) FROM callers))",
    "SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))",
    "VACUUM ANALYZE turns",
    "VACUUM ANALYZE calls",
    "VACUUM ANALYZE callers",
]
# The sizes are written into the SQL: Postgres cannot type an untyped parameter in `$1 * $2`.
SIZES = {
    "CALLS": CALLS,
    "OTHER_CALLS": OTHER_CALLS,
    "OTHER_CALLERS": OTHER_CALLERS,
    "TURNS_PER_CALL": TURNS_PER_CALL,
}


async def build(settings: Settings, caller_hash: str) -> None:
    params = {
        "bot": BOT,
        "hash": caller_hash,
        "topics": TOPICS + WORDS,
    }
    engine = create_async_engine(settings.database_url or "", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        for template in BUILD:
            statement = template.format(**SIZES)
            started = time.perf_counter()
            query = text(statement)
            await conn.execute(query, {k: v for k, v in params.items() if f":{k}" in statement})
            print(f"  {time.perf_counter() - started:6.1f} s  {statement[:90]}")
        turns = (await conn.execute(text("SELECT count(*) FROM turns"))).scalar_one()
        mine = (await conn.execute(text("SELECT count(*) FROM turns WHERE caller_id = 1"))).scalar_one()
    await engine.dispose()
    print(f"archive: {turns:,} turns; the caller under test has {CALLS:,} calls and {mine:,} turns")


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000


class Caller:
    """Places calls of 8 speech turns back to back through one app, timing each speech turn."""

    def __init__(self, http: httpx.AsyncClient, prefix: str) -> None:
        self._http = http
        self._prefix = prefix
        self._calls = 0
        self._call: str | None = None
        self._said = 0

    async def _send(self, event: dict[str, object]) -> None:
        response = await self._http.post("/webhook/call", json={**event, "from": CALLER, "to": BOT})
        assert response.status_code == 200, response.text

    async def speech_turn(self, said: str) -> float:
        if self._call is None or self._said == 8:
            if self._call is not None:
                await self._send({"type": "call.hangup", "call_id": self._call})
            self._calls += 1
            self._call, self._said = f"{self._prefix}-{self._calls}", 0
            await self._send({"type": "call.ringing", "call_id": self._call})
        self._said += 1
        started = time.perf_counter()
        await self._send({"type": "call.speech_recognized", "call_id": self._call, "speech": said})
        return time.perf_counter() - started


async def _timed(samples: list[float], turn: Callable[[], Awaitable[float]], n: int) -> None:
    for _ in range(n):
        samples.append(await turn())


async def main(turns: int, rounds: int) -> None:
    questions = [
        f"What was the {t} reference I gave you last time?" for t in random.sample(TOPICS + WORDS, 50)
    ]
    async with scratch_stores("search") as stores, StubServer().running() as llm:
        settings = scratch_settings(
            stores,
            openai_api_key="sk-bench",
            openai_base_url=llm.base_url,
            summary_worker=False,
            background_tasks=False,
        )
        llm.stub.keep_requests = False
        async with open_services(settings) as services:
            caller = services.memory.address(BOT, CALLER)
        t0 = time.perf_counter()
        await build(settings, caller.caller_hash)
        print(f"built in {time.perf_counter() - t0:.0f} s")

        async with open_services(settings) as services:
            query: list[float] = []
            hits = 0
            for n in range(turns):
                started = time.perf_counter()
                found = await services.memory.recall(caller, questions[n % len(questions)])
                query.append(time.perf_counter() - started)
                hits += len(found)
            q50, q95 = _ms(query)
            print(
                f"search query alone: p50 {q50:.2f} ms, p95 {q95:.2f} ms ({hits / turns:.1f} matches a query)"
            )

        off_app = create_app(settings.model_copy(update={"search_enabled": False}))
        on_app = create_app(settings)
        async with LifespanManager(off_app) as off, LifespanManager(on_app) as on:
            base = "http://callmemory.bench"
            async with (
                httpx.AsyncClient(transport=httpx.ASGITransport(app=off.app), base_url=base) as off_http,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=on.app), base_url=base) as on_http,
            ):
                drivers = {"off": Caller(off_http, "off"), "on": Caller(on_http, "on")}
                samples: dict[str, list[float]] = {"off": [], "on": []}
                asked = iter(range(10**9))

                for driver in drivers.values():  # warm-up: pools, caches, hot memory
                    await _timed([], lambda d=driver: d.speech_turn(questions[next(asked) % 50]), 30)
                for _ in range(rounds):
                    for mode, driver in drivers.items():
                        await _timed(
                            samples[mode],
                            lambda d=driver: d.speech_turn(questions[next(asked) % 50]),
                            turns // rounds,
                        )
        (off50, off95), (on50, on95) = _ms(samples["off"]), _ms(samples["on"])
        print(f"speech turn, {len(samples['off'])} turns each, alternating in {rounds} rounds:")
        print(f"  search off: p50 {off50:.2f} ms, p95 {off95:.2f} ms")
        print(f"  search on:  p50 {on50:.2f} ms, p95 {on95:.2f} ms")
        print(f"  difference: p50 {on50 - off50:+.2f} ms, p95 {on95 - off95:+.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=400, help="timed speech turns per mode")
    parser.add_argument("--rounds", type=int, default=8, help="alternations between the two modes")
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.rounds))
