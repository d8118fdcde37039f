"""The client of one Redis server (also a Sentinel's master), with a lean round trip for the hot path.

Every webhook event makes one to three round trips to Redis, and redis-py's pipeline spends much of
its CPU around them: its blocking pool's condition, lock, timeout and socket check, a task for
`asyncio.shield` on every reset, a task for the write's timeout, a timeout per reply, and its
telemetry hooks. `round_trip` sends the same queued commands on a connection of its own idle list,
under one deadline for the whole trip, packed by hiredis, and reads the replies as the pipeline does:
0.14 ms of CPU against 0.28 for a pipeline of three commands, 0.11 against 0.21 for a script
(bench/redis_clients.py, "lean round trip" against "redis-py as served", one run).

The connections are made by the client's own pool (`make_connection`: its address, credentials, TLS,
and for a Sentinel pool the master's lookup), but kept apart from it: at most `max_connections` of
them, beside the pool's own for every other command. A cluster keeps redis-py's cluster pipeline,
which routes the commands by slot.

With replicas to wait for (replicas.py), every trip ends with WAIT on its own connection.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callmemory.memory.hot.replicas import ReplicaWait

# A queued command as redis-py's pipeline keeps it: its arguments, and the options its reply's
# callback takes.
Queued = tuple[tuple[Any, ...], Mapping[str, Any]]

_NEVER_DECODE = "NEVER_DECODE"
_EMPTY_RESPONSE = "EMPTY_RESPONSE"


class ServerRedis(Redis):
    """redis-py's client of one server, plus `round_trip` (sized by `with_trips`, see client.py)."""

    _trip_slots: asyncio.Semaphore
    _trip_idle: list[AbstractConnection]
    _trip_timeout_s: float
    _trip_retry: Retry
    _trip_wait: ReplicaWait | None

    def with_trips(
        self, *, max_connections: int, timeout_s: float, wait: ReplicaWait | None = None
    ) -> ServerRedis:
        """This client, its round trips on at most `max_connections` connections, `timeout_s` each,
        each held until `wait`'s replicas have its writes."""
        self._trip_wait = wait
        self._trip_slots = asyncio.Semaphore(max_connections)
        self._trip_idle = []
        self._trip_timeout_s = timeout_s
        # The client's own policy (client._once_on_a_fresh_connection): its errors, tries and pauses.
        self._trip_retry = self.get_retry() or Retry(NoBackoff(), 0)
        return self

    async def round_trip(self, queued: Sequence[Queued]) -> list[Any]:
        """Send `queued` in one write, read their replies in order; as `Pipeline.execute()` without a
        transaction: each reply through its command's callback, the first error reply raised once all
        are read. A failure is retried by the client's retry policy, as the pool's commands are: a
        connection error once, on a new connection; a timeout not (the server may be running them)."""
        if self._trip_wait is not None:
            queued = [*queued, (self._trip_wait.command, {})]
        if self._trip_slots.locked():  # else acquired at once: no deadline to set up on every trip
            try:
                async with asyncio.timeout(self._trip_timeout_s):
                    await self._trip_slots.acquire()
            except TimeoutError:
                raise RedisConnectionError("No connection available.") from None
        else:
            await self._trip_slots.acquire()
        try:
            # After a failure the idle list is empty, so a retry is on a new connection.
            replies = await self._trip_retry.call_with_retry(
                lambda: self._on(self._idle_connection(), queued), self._after_failure
            )
        finally:
            self._trip_slots.release()
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        if self._trip_wait is not None:
            self._trip_wait.acknowledged(replies.pop())
        return replies

    async def _after_failure(self, error: Exception) -> None:
        # The server restarted or dropped us: the other idle connections are likely dead too.
        await self._drop_idle()

    def _idle_connection(self) -> AbstractConnection:
        return self._trip_idle.pop() if self._trip_idle else self._new_connection()

    def _new_connection(self) -> AbstractConnection:
        connection: AbstractConnection = self.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        # The trip's own deadline bounds its writes and reads: with a socket timeout of its own, redis-py
        # would run every write in a task of its own (asyncio.wait_for).
        connection.socket_timeout = None
        return connection

    async def _on(self, connection: AbstractConnection, queued: Sequence[Queued]) -> list[Any]:
        try:
            async with asyncio.timeout(self._trip_timeout_s):
                if not connection.is_connected:
                    await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_packed_command(_packed(connection, queued), check_health=False)
                replies = [await self._reply(connection, args[0], options) for args, options in queued]
        except TimeoutError:
            await connection.disconnect(nowait=True)
            raise RedisTimeoutError("Redis did not answer in time") from None
        except BaseException:
            # Replies may still be on their way: the connection cannot be used again.
            await connection.disconnect(nowait=True)
            raise
        self._trip_idle.append(connection)
        return replies

    async def _reply(self, connection: AbstractConnection, command: Any, options: Mapping[str, Any]) -> Any:
        # As redis-py's Redis.parse_response, with the trip's deadline in place of one per reply.
        options = dict(options)
        options.pop("keys", None)
        try:
            reply = await connection.read_response(
                disable_decoding=bool(options.pop(_NEVER_DECODE, False)), timeout=math.inf
            )
        except ResponseError as error:
            return options.get(_EMPTY_RESPONSE, error)
        options.pop(_EMPTY_RESPONSE, None)
        callback = self.response_callbacks.get(command)
        if callback is None:
            return reply
        result = callback(reply, **options)
        return await result if inspect.isawaitable(result) else result

    async def _drop_idle(self) -> None:
        idle, self._trip_idle = self._trip_idle, []
        for connection in idle:
            await connection.disconnect(nowait=True)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self._drop_idle()
        await super().aclose(close_connection_pool)


_PLAIN: Final = (str, bytes, int, float)


def _packed(connection: AbstractConnection, queued: Sequence[Queued]) -> bytes | list[bytes]:
    """The commands in the protocol: by hiredis' C packer (a sixth of redis-py's CPU) when every
    argument is one it encodes as redis-py does (text as UTF-8, numbers as their repr), else redis-py's
    (which also splits a name such as "CONFIG GET" and refuses a bool)."""
    commands = [args for args, _ in queued]
    for args in commands:
        name = args[0]
        if not isinstance(name, str) or " " in name or any(type(arg) not in _PLAIN for arg in args):
            return connection.pack_commands(commands)
    return b"".join(map(hiredis.pack_command, commands))
