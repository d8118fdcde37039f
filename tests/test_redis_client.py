"""The service's Redis connections pack commands with hiredis, to the same bytes redis-py would send."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, Connection, UnixDomainSocketConnection

from callmemory.memory.redis_client import redis_client


def _connection(client: Redis) -> AbstractConnection:
    pool = client.connection_pool
    return pool.connection_class(**pool.connection_kwargs)


COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "cm:{ab}:meta", "Grüße, 👋", "EX", 86400),
    ("EVALSHA", "f" * 40, 2, "k1", "k2", 1_795_000_000_123, 0.25, b"raw\x00bytes"),
    ("CONFIG GET", "maxmemory"),  # a two-word command name
    ("ZADD", "cm:live", "NX", 1_795_000_000_123, "seed|+14155550000|ab|c-1"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[str(c[0]) for c in COMMANDS])
def test_a_command_is_packed_to_the_bytes_redis_py_sends(command: tuple[Any, ...]) -> None:
    ours = redis_client("redis://127.0.0.1:6379/0", max_connections=1, timeout_s=1)
    theirs = Connection(decode_responses=True)

    packed = _connection(ours).pack_command(*command)

    assert b"".join(packed) == b"".join(theirs.pack_command(*command))


def test_a_unix_socket_redis_gets_the_same_packing() -> None:
    client = redis_client("unix:///tmp/redis.sock", max_connections=1, timeout_s=1)

    connection = _connection(client)

    assert isinstance(connection, UnixDomainSocketConnection)
    assert type(connection).pack_command is not UnixDomainSocketConnection.pack_command
