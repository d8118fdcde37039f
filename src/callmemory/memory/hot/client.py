"""The Redis client every worker shares: one server, a Redis Cluster or a master found through Sentinel,
chosen by the form of REDIS_URL (see docs/scaling.md):

    redis://host:6379/0                       one server (rediss:// with TLS)
    redis+cluster://host:7000                 a cluster, found from one of its nodes (rediss+cluster://)
    redis://host:7000?cluster=true            the same
    redis://host-a:7000,host-b:7001           a cluster, found from any of the nodes listed
    redis+sentinel://host-a:26379,host-b:26379/<master-name>[/<db>]
                                              the master that the sentinels name (rediss+sentinel://)

The cluster forms follow redis/agent-memory-server's, which users of Redis' own AI tooling already know.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from callmemory.memory.hot.replicas import ReplicaWait
from callmemory.memory.hot.server import ServerRedis
from callmemory.observability.logs import mask_numbers

# What a failing hot store raises, for code outside memory/hot/ to catch without naming the client
# library (OSError: a socket error redis-py does not wrap, or a deadline that passed;
# RedisClusterException, no RedisError: a cluster whose nodes cannot be reached, mid-failover).
HOT_STORE_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)

# The client hot memory runs on: one server's (also a Sentinel master's) or a cluster's.
HotRedis = Redis | RedisCluster

_CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SENTINEL_SCHEMES: Final = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
_DEFAULT_PORT: Final = 6379
_SENTINEL_PORT: Final = 26379


class RedisUrlError(ValueError):
    """REDIS_URL names no topology this client knows; the message says what is wrong, without the URL
    (it may carry a password)."""


@dataclass(frozen=True, slots=True)
class Topology:
    """What REDIS_URL asks for: `kind` is single, cluster or sentinel."""

    kind: str
    url: str  # for a single server; for the others the URL with their own parts removed
    nodes: tuple[tuple[str, int], ...] = ()  # cluster startup nodes, or the sentinels
    service: str = ""  # the Sentinel master's name
    db: int = 0


def topology(url: str) -> Topology:
    """Read REDIS_URL's form (see the module's docstring)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qsl(parts.query, keep_blank_values=True)
    cluster_flag = any(k.lower() == "cluster" and v.lower() in ("true", "1", "yes") for k, v in query)
    rest = urlencode([(k, v) for k, v in query if k.lower() != "cluster"])
    credentials, _, hosts = parts.netloc.rpartition("@")
    if scheme in _SENTINEL_SCHEMES:
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise RedisUrlError(
                "a redis+sentinel:// URL names its master: redis+sentinel://host:26379/<name>"
            )
        db = _db(path[1]) if len(path) > 1 else 0
        base = urlunsplit((_SENTINEL_SCHEMES[scheme], _netloc(credentials, "localhost"), f"/{db}", rest, ""))
        return Topology("sentinel", base, _hosts(hosts, _SENTINEL_PORT), service=unquote(path[0]), db=db)
    if scheme in _CLUSTER_SCHEMES or cluster_flag or "," in hosts:
        plain = _CLUSTER_SCHEMES.get(scheme, scheme)
        if plain not in ("redis", "rediss"):
            raise RedisUrlError(f"REDIS_URL's scheme {parts.scheme!r} is not redis, rediss or their +cluster")
        nodes = _hosts(hosts, _DEFAULT_PORT)
        first = f"{nodes[0][0]}:{nodes[0][1]}"
        base = urlunsplit((plain, _netloc(credentials, first), parts.path, rest, ""))
        return Topology("cluster", base, nodes)
    return Topology("single", url)


def _hosts(hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    found = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":") if ":" in host else (host.strip(), "", "")
        if not name:
            raise RedisUrlError("REDIS_URL lists an empty host")
        try:
            found.append((name.strip("[]"), int(port) if port else default_port))
        except ValueError:
            raise RedisUrlError(f"REDIS_URL's host {name!r} has a port that is not a number") from None
    return tuple(found)


def _netloc(credentials: str, host: str) -> str:
    return f"{credentials}@{host}" if credentials else host


def _db(part: str) -> int:
    try:
        return int(part)
    except ValueError:
        raise RedisUrlError(f"REDIS_URL's database {part!r} is not a number") from None


async def keys_matching(redis: HotRedis, pattern: str) -> AsyncIterator[str]:
    """The keys that match `pattern`, whose hash tag (not a glob) names their slot: on a cluster only
    the node that holds that slot is scanned."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()  # the slots are known only once the client has asked the nodes
        node = redis.get_node_from_key(pattern)
        async for key in redis.scan_iter(match=pattern, count=1000, target_nodes=node):
            yield str(key)
    else:
        async for key in redis.scan_iter(match=pattern, count=1000):
            yield str(key)


def describe_store_error(exc: BaseException) -> str:
    """A hot-store error as it may be logged: its type and the server's message (a MOVED target, a
    node that cannot be reached), without the command that redis-py's cluster pipeline puts in front
    of it, which quotes keys and arguments (a caller's words)."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    message = _PIPELINE_PREFIX.sub("", message)
    return f"{type(exc).__name__}: {mask_numbers(message)[:200]}" if message else type(exc).__name__


# "Command # 2 (EVALSHA ... the arguments ...) of pipeline caused error: ('the message',)"
_PIPELINE_PREFIX: Final = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ")


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


def redis_client(
    url: str, *, max_connections: int, timeout_s: float, wait: ReplicaWait | None = None
) -> HotRedis:
    """The client for REDIS_URL's topology, with at most `max_connections` commands in flight; with
    `wait`, its pipelines (the hot path's round trips) are held until replicas have their writes."""
    where = topology(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "health_check_interval": 30,
    }
    if where.kind == "cluster":
        return GatedCluster.for_topology(
            where, max_connections=max_connections, timeout_s=timeout_s, wait=wait, **options
        )
    if where.kind == "sentinel":
        return _sentinel_master(
            where, max_connections=max_connections, timeout_s=timeout_s, wait=wait, **options
        )
    # A blocking pool: redis-py's default pool fails at once ("Too many connections") beyond its size,
    # which the load benchmark turned into 503s; this one waits for a connection.
    client = cast(
        ServerRedis,
        ServerRedis.from_pool(
            BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout_s,
                retry=_once_on_a_fresh_connection(),
                **options,
            )
        ),
    )
    return client.with_trips(max_connections=max_connections, timeout_s=timeout_s, wait=wait)


# Set while a task holds a permit of a GatedCluster, so that a command the cluster client sends on its
# own behalf (a redirected pipeline command is sent again alone) does not wait for a second permit.
_HOLDING: contextvars.ContextVar[bool] = contextvars.ContextVar("callmemory_redis_permit", default=False)


class GatedCluster(RedisCluster):
    """A cluster client with at most `concurrency` commands or pipelines in flight.

    redis-py's cluster client has no blocking pool: past its connections per node it raises "Too many
    connections" at once, which under load would be a 503 per request over the limit. Here a request
    beyond the limit waits for a permit instead (for at most the command timeout), as with the one
    server's blocking pool. A permit covers a whole pipeline, which holds at most one connection per
    node at a time, so no node is ever asked for more connections than there are permits.
    """

    def __init__(
        self, *args: Any, concurrency: int, wait_s: float, replica_wait: ReplicaWait | None, **kwargs: Any
    ) -> None:
        kwargs["max_connections"] = concurrency
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(concurrency)
        self._wait_s = wait_s
        self.replica_wait = replica_wait

    @classmethod
    def for_topology(
        cls,
        where: Topology,
        *,
        max_connections: int,
        timeout_s: float,
        wait: ReplicaWait | None,
        **options: Any,
    ) -> GatedCluster:
        parts = urlsplit(where.url)
        credentials, _, _ = parts.netloc.rpartition("@")
        user, _, password = credentials.partition(":")
        query = dict(parse_qsl(parts.query))
        return cls(
            startup_nodes=[ClusterNode(host, port) for host, port in where.nodes],
            concurrency=max_connections,
            wait_s=timeout_s,
            replica_wait=wait,
            username=unquote(user) or None,
            password=unquote(password) or None,
            ssl=parts.scheme == "rediss",
            # A failover: the cluster client finds the promoted replica by asking the nodes again, on each
            # of these tries (a pipeline pauses a quarter-second between them); together they cover a
            # replica's promotion, a couple of seconds with cluster-node-timeout at one second.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=int(query.get("retries", 8))),
            **options,
        )

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[None]:
        if _HOLDING.get():
            yield
            return
        async with asyncio.timeout(self._wait_s):
            await self._gate.acquire()
        token = _HOLDING.set(True)
        try:
            yield
        except AttributeError as exc:
            # redis-py 8.1's cluster pipeline, retrying after a node failed, closes every connection of
            # the client, also those other tasks are writing to at that moment; they fail with
            # "'NoneType' object has no attribute 'writelines'" (seen in the failover test). It is a
            # lost connection, to be answered 503 and retried, not a bug of ours to answer 500.
            raise RedisConnectionError(f"connection closed under the command: {exc}") from exc
        finally:
            _HOLDING.reset(token)
            self._gate.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.permit():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused there, with redis-py's message
        # (mypy takes an attribute ClusterPipeline sets in __init__ for an abstract one.)
        return _GatedPipeline(self, transaction)  # type: ignore[abstract]


class _GatedPipeline(ClusterPipeline):
    """A cluster pipeline under the client's permits; with replicas to wait for, each node's part of it
    ends with WAIT, which the cluster pipeline sends on the connection that carried that part."""

    cluster_client: GatedCluster

    def __init__(self, client: GatedCluster, transaction: bool | None = None) -> None:
        super().__init__(client, transaction)
        # Not in a transaction: WAIT inside MULTI answers at once (and the hot path has none).
        self._wait = None if transaction else client.replica_wait
        self._keys: list[str] = []  # a key of each command queued, for the node WAIT goes to

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if (key := _first_key(args)) is not None:
            self._keys.append(key)
        return super().execute_command(*args, **kwargs)

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        keys, self._keys = self._keys, []
        async with self.cluster_client.permit():
            wait = self._wait
            if wait is None or not keys:
                return await super().execute(raise_on_error, allow_redirections)
            await self.cluster_client.initialize()  # the slots, for the nodes (once per client)
            nodes = {node.name: node for node in map(self.cluster_client.get_node_from_key, keys) if node}
            for node in nodes.values():
                super().execute_command(*wait.command, target_nodes=node)
            replies = await super().execute(raise_on_error, allow_redirections)
        if nodes:
            for name, acks in zip(nodes, replies[-len(nodes) :], strict=True):
                wait.acknowledged(acks, name)
            del replies[-len(nodes) :]
        return replies


def _first_key(args: tuple[Any, ...]) -> str | None:
    """The first key of a command as our steps queue them: a script's first KEYS entry, else the word
    after the command's name."""
    if str(args[0]).upper() in ("EVALSHA", "EVAL"):
        return str(args[3]) if len(args) > 3 and int(args[2]) > 0 else None
    return str(args[1]) if len(args) > 1 else None


def _sentinel_master(
    where: Topology, *, max_connections: int, timeout_s: float, wait: ReplicaWait | None, **options: Any
) -> ServerRedis:
    parts = urlsplit(where.url)
    credentials, _, _ = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    query = dict(parse_qsl(parts.query))
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(where.nodes),
        # The sentinels' own password, if they have one (the URL's is the master's).
        sentinel_kwargs={
            "password": query.get("sentinel_password"),
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
        },
        username=unquote(user) or None,
        password=unquote(password) or None,
        db=where.db,
        ssl=parts.scheme == "rediss",
        retry=_once_on_a_fresh_connection(),
        **options,
    )
    # The sentinel pool asks the sentinels for the master on every new connection, so connections
    # made after a failover go to the promoted replica; made blocking, as the single server's pool.
    master: ServerRedis = sentinels.master_for(
        where.service,
        redis_class=ServerRedis,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=max_connections,
        timeout=timeout_s,
    )
    return master.with_trips(max_connections=max_connections, timeout_s=timeout_s, wait=wait)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (which finds the master) that waits for a free connection rather than failing."""
