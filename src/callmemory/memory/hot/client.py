"""The Redis client every worker shares."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

# What a failing hot store raises, for code outside memory/hot/ to catch without naming the client
# library (OSError: a socket error redis-py does not wrap, or a deadline that passed).
HOT_STORE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


def _once_on_a_fresh_connection() -> Retry:
    """A command that fails because its pooled connection died is sent once more, on a new one.

    A Redis restart leaves every pooled connection dead, and each would fail its next command ("Connection
    closed by server"): without this, one 503 per pooled connection, until all had been used once.

    Why a second send does not apply a command twice, although some of our scripts are not idempotent
    (appending a turn, counting a finished call): only ConnectionError is retried, which redis-py raises
    when it cannot connect, cannot write, or finds the socket closed before any reply, i.e. when the
    server that was to run the command is gone, and a restarted server never saw a command sent to its
    predecessor's socket. The one exception, a server that ran the command and died in the
    microseconds before replying, is no worse retried than not: the 503 would make the platform
    redeliver the event, which runs the command again all the same (and an event with an id is
    recorded once either way, see the event keys in keys.py). A TimeoutError is not retried: then the server
    is alive but slow and may well be running the command.
    """
    # The pause lets a restarting server finish loading its data (it refuses commands while it does,
    # with BusyLoadingError, a ConnectionError).
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1, supported_errors=(RedisConnectionError,))


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
            retry=_once_on_a_fresh_connection(),
        )
    )
