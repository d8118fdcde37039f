"""The Redis client every worker shares: a waiting pool, and commands packed by hiredis.

redis-py's asyncio connections pack each command into the wire format in Python (its sync ones use
hiredis when installed): for the pipelines of a call's events that was a fifth of their CPU. The
connections here hand the packing to hiredis, exactly as redis-py's own sync serializer does.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError


class _HiredisPacking(AbstractConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py's HiredisRespSerializer: a command name like "CONFIG GET" is two words.
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        if any(isinstance(a, bytearray | memoryview) for a in args):
            args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        packable: Any = args
        try:
            return [hiredis.pack_command(packable)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` (plain, TLS or unix socket: the URL decides) with hiredis packing."""
    if connection_class not in _PACKING:
        name = f"Hiredis{connection_class.__name__}"
        _PACKING[connection_class] = type(name, (_HiredisPacking, connection_class), {})
    return _PACKING[connection_class]


def redis_client(url: str, *, max_connections: int, timeout_s: float) -> Redis:
    # A blocking pool: redis-py's default pool fails at once ("Too many connections") beyond its size,
    # which the load benchmark turned into 503s; this one waits for a connection.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
    pool.connection_class = _packing(pool.connection_class)
    return Redis.from_pool(pool)
