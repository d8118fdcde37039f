"""CPU per Redis round trip, by client: redis-py with hiredis, the service's lean round trip on it,
coredis, valkey-glide.

The same two round trips a speech turn makes, against the local Redis (127.0.0.1:6379) under a key
prefix of the run's own: a Lua script by its SHA (3 keys: read a hash, append to a list and trim it,
refresh an expiry; it returns the hash and the list's length) and a pipeline of 3 commands (HGETALL,
LRANGE, EXPIRE). One at a time; this process's CPU time (`time.process_time`, every thread: glide's
Rust core works in threads of its own) per round trip. Clients alternate, round after round. Clients
that are not installed (coredis and valkey-glide are not dependencies) are left out.

    ./dev run python bench/redis_clients.py [--trips 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvloop
from redis.asyncio import Redis

HOST, PORT = "127.0.0.1", 6379
SCRIPT = """
local fields = redis.call('HGETALL', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -20, -1)
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {fields, redis.call('LLEN', KEYS[2])}
"""
TURN = b'{"role":"caller","text":"Question 1: where is my order 4417?","at":1764748800.0}'

Trip = Callable[[], Awaitable[Any]]


@asynccontextmanager
async def redis_py(keys: list[str], client: Redis | None = None) -> AsyncIterator[dict[str, Trip]]:
    client = client or Redis(host=HOST, port=PORT)
    script = client.register_script(SCRIPT)

    async def lua() -> Any:
        return await script(keys=keys, args=[TURN, 60000])

    async def pipeline() -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys[0]).lrange(keys[1], 0, -1).expire(keys[2], 60)
        return await pipe.execute()

    try:
        yield {"script": lua, "pipeline": pipeline}
    finally:
        await client.aclose()


@asynccontextmanager
async def redis_py_as_served(keys: list[str]) -> AsyncIterator[dict[str, Trip]]:
    """redis-py configured as the service configures it (memory/hot/client.py): a blocking pool,
    decoded replies, a retry policy, health checks."""
    from callmemory.memory.hot.client import redis_client

    async with redis_py(
        keys, redis_client(f"redis://{HOST}:{PORT}/0", max_connections=200, timeout_s=2)
    ) as t:
        yield t


@asynccontextmanager
async def lean_round_trip(keys: list[str]) -> AsyncIterator[dict[str, Trip]]:
    """The service's client, the commands queued by redis-py's pipeline as the hot store queues them,
    sent by its lean round trip (memory/hot/server.py), as the hot store sends them."""
    from callmemory.memory.hot.client import redis_client
    from callmemory.memory.hot.server import ServerRedis

    client = redis_client(f"redis://{HOST}:{PORT}/0", max_connections=200, timeout_s=2)
    assert isinstance(client, ServerRedis)
    sha = await client.script_load(SCRIPT)

    async def lua() -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", sha, len(keys), *keys, TURN, 60000)
        return await client.round_trip(pipe.command_stack)

    async def pipeline() -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys[0]).lrange(keys[1], 0, -1).expire(keys[2], 60)
        return await client.round_trip(pipe.command_stack)

    try:
        yield {"script": lua, "pipeline": pipeline}
    finally:
        await client.aclose()


@asynccontextmanager
async def coredis_client(keys: list[str]) -> AsyncIterator[dict[str, Trip]]:
    import coredis

    client: Any = coredis.Redis(host=HOST, port=PORT)
    async with client:
        script = client.register_script(SCRIPT)

        async def lua() -> Any:
            return await script(keys=keys, args=[TURN, 60000])

        async def pipeline() -> Any:
            async with client.pipeline(transaction=False) as pipe:
                results = (pipe.hgetall(keys[0]), pipe.lrange(keys[1], 0, -1), pipe.expire(keys[2], 60))
            return [await r for r in results]

        yield {"script": lua, "pipeline": pipeline}


@asynccontextmanager
async def glide_client(keys: list[str]) -> AsyncIterator[dict[str, Trip]]:
    import glide

    config = glide.GlideClientConfiguration([glide.NodeAddress(HOST, PORT)])
    client: Any = await glide.GlideClient.create(config)
    script = glide.Script(SCRIPT)

    async def lua() -> Any:
        return await client.invoke_script(script, keys=keys, args=[TURN, b"60000"])

    async def pipeline() -> Any:
        batch = glide.Batch(is_atomic=False)
        batch.hgetall(keys[0])
        batch.lrange(keys[1], 0, -1)
        batch.expire(keys[2], 60)
        return await client.exec(batch, raise_on_error=True)

    try:
        yield {"script": lua, "pipeline": pipeline}
    finally:
        await client.close()


CLIENTS = {
    "redis-py + hiredis": redis_py,
    "redis-py as served": redis_py_as_served,
    "lean round trip": lean_round_trip,
    "coredis": coredis_client,
    "valkey-glide": glide_client,
}


async def main(trips: int, rounds: int) -> None:
    prefix = f"bench-redis-{uuid.uuid4().hex[:8]}"
    keys = [f"{prefix}:caller", f"{prefix}:turns", f"{prefix}:call"]
    setup = Redis(host=HOST, port=PORT)
    await setup.hset(keys[0], mapping={"name": "Ada", "topic": "order 4417", "calls": "3"})
    await setup.set(keys[2], "open")
    candidates: dict[str, Trip] = {}
    async with AsyncExitStack() as stack:
        for name, opener in CLIENTS.items():
            try:
                trips_of = await stack.enter_async_context(opener(keys))
            except ImportError:
                print(f"{name} is not installed: left out")
                continue
            for kind, trip in trips_of.items():
                for _ in range(50):  # connected, the script loaded
                    await trip()
                candidates[f"{name}, {kind}"] = trip
        cpu: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for name, trip in candidates.items():
                started = time.process_time()
                for _ in range(trips):
                    await trip()
                cpu[name].append((time.process_time() - started) / trips * 1000)
    await setup.delete(*keys)
    await setup.aclose()
    print(f"{trips} round trips per way per round, {rounds} rounds alternating; CPU ms per round trip")
    print(f"{'client, round trip':<34}{'median':>8}{'min':>8}{'max':>8}")
    for name, values in cpu.items():
        print(f"{name:<34}{statistics.median(values):>8.3f}{min(values):>8.3f}{max(values):>8.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trips", type=int, default=2000, help="round trips per way per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(main(args.trips, args.rounds))
