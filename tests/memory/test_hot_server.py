"""One server's lean round trip (memory/hot/server.py) answers as redis-py's pipeline would, keeps within
its connections, and fails as the hot store's callers expect: a restart retried on a fresh connection,
a silent server within the deadline."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callmemory.memory.hot.client import redis_client
from callmemory.memory.hot.server import ServerRedis
from support.redis_server import OwnRedis
from support.services import redis_server_url
from support.serving import free_port


@pytest.fixture
async def server() -> AsyncIterator[ServerRedis]:
    client = cast(ServerRedis, redis_client(redis_server_url(), max_connections=4, timeout_s=2))
    yield client
    await client.aclose()


def queued(client: ServerRedis, *commands: tuple[Any, ...]) -> list[Any]:
    """Commands queued as the hot store queues them: through redis-py's pipeline."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.command_stack)


async def test_replies_come_back_in_order_through_their_commands_callbacks(server: ServerRedis) -> None:
    key = f"cmtest-trip-{uuid.uuid4().hex}"
    pipe = server.pipeline(transaction=False)
    pipe.set(key, "open", nx=True, ex=60)
    pipe.get(key)
    pipe.zadd(f"{key}:z", {"a": 1, "b": 2})
    pipe.delete(key, f"{key}:z")

    replies = await server.round_trip(pipe.command_stack)

    assert replies == [True, "open", 2, 2]


async def test_an_error_reply_is_raised_once_every_reply_is_read(server: ServerRedis) -> None:
    key = f"cmtest-trip-{uuid.uuid4().hex}"

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await server.round_trip(
            queued(server, ("SET", key, "text"), ("LPUSH", key, "x"), ("EXPIRE", key, "60"))
        )

    # The commands around the error ran, and the connection's next trip reads its own replies.
    assert await server.round_trip(queued(server, ("TTL", key), ("DEL", key))) == [60, 1]


async def test_concurrent_trips_open_no_more_connections_than_allowed(tmp_path: Path) -> None:
    with OwnRedis(tmp_path / "redis").running() as own:
        # Named, so that only this client's connections are counted (not the server's start-up check's).
        url = f"{own.url}?client_name=trips-under-test"
        client = cast(ServerRedis, redis_client(url, max_connections=3, timeout_s=5))
        try:
            replies = await asyncio.gather(
                *(client.round_trip(queued(client, ("INCR", "n"))) for _ in range(40))
            )
            connected = [c for c in await client.client_list() if c["name"] == "trips-under-test"]
        finally:
            await client.aclose()

    assert sorted(r for [r] in replies) == list(range(1, 41))
    assert len(connected) <= 3 + 1  # the trips' own, and the pool's for CLIENT LIST


async def test_a_trip_after_a_restart_is_answered_on_a_fresh_connection(tmp_path: Path) -> None:
    with OwnRedis(tmp_path / "redis").running() as own:
        client = cast(ServerRedis, redis_client(own.url, max_connections=4, timeout_s=5))
        try:
            await asyncio.gather(*(client.round_trip(queued(client, ("INCR", "n"))) for _ in range(4)))
            own.kill()
            own.start()  # the append-only file keeps n; every idle connection is dead

            after = await asyncio.gather(
                *(client.round_trip(queued(client, ("INCR", "n"))) for _ in range(4))
            )
        finally:
            await client.aclose()

    assert sorted(r for [r] in after) == [5, 6, 7, 8]


async def test_a_server_that_never_answers_fails_the_trip_within_its_deadline() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # the commands, never answered
        await asyncio.sleep(30)

    port = free_port()
    listener = await asyncio.start_server(mute, "127.0.0.1", port)
    client = cast(ServerRedis, redis_client(f"redis://127.0.0.1:{port}/0", max_connections=2, timeout_s=0.5))
    started = time.monotonic()
    try:
        with pytest.raises(RedisTimeoutError):
            await client.round_trip(queued(client, ("GET", "k")))
        waited = time.monotonic() - started
    finally:
        await client.aclose()
        listener.close()

    assert waited < 5  # the deadline is 0.5 s; this bounds a hang, it is no speed requirement


async def test_arguments_of_every_kind_reach_the_server_as_redis_py_would_send_them(
    server: ServerRedis,
) -> None:
    key = f"cmtest-trip-{uuid.uuid4().hex}"
    said = "Où est ma commande 4417 ? 🙂"

    replies = await server.round_trip(
        queued(server, ("RPUSH", key, said, b"raw", 17, 2.5), ("LRANGE", key, 0, -1), ("DEL", key))
    )

    assert replies == [4, [said, "raw", "17", "2.5"], 1]
