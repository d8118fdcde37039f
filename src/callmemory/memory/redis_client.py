"""The Redis client every worker shares."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def redis_client(url: str, *, max_connections: int, timeout_s: float) -> Redis:
    # A blocking pool: redis-py's default pool fails at once ("Too many connections") beyond its size,
    # which the load benchmark turned into 503s; this one waits for a connection.
    return Redis.from_pool(
        BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
    )
