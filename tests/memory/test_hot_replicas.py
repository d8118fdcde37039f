"""With CALLMEMORY_REDIS_WAIT_REPLICAS, a hot-path round trip is answered once replicas have its writes
(memory/hot/replicas.py): on one server (or Sentinel's master) and on each node a cluster pipeline wrote
to. A replica that does not answer delays a write by the wait's timeout at most, and is logged."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from callmemory.memory.hot.client import HotRedis, redis_client
from callmemory.memory.hot.lua import Pipe, Step, in_order
from callmemory.memory.hot.replicas import ReplicaWait
from support.redis_cluster import LocalCluster, missing_binaries
from support.redis_server import OwnRedis

WAIT_S = 1.0  # long beside a replica's acknowledgement, even on a loaded machine


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[OwnRedis, OwnRedis]]:
    """A master and its replica, in sync."""
    master = OwnRedis(tmp_path / "master")
    with master.running(), OwnRedis(tmp_path / "replica", replica_of=master.port).running() as replica:
        replica.wait_until_replicating()
        yield master, replica


@pytest.fixture
async def waiting(pair: tuple[OwnRedis, OwnRedis]) -> AsyncIterator[HotRedis]:
    master, _ = pair
    client = redis_client(master.url, max_connections=4, timeout_s=2, wait=ReplicaWait(1, WAIT_S))
    yield client
    await client.aclose()


def set_key(key: str, value: str) -> Step:
    def step(pipe: Pipe) -> None:
        pipe.set(key, value)

    return step


async def test_a_write_is_answered_once_the_replica_has_it_with_its_replies_unchanged(
    pair: tuple[OwnRedis, OwnRedis], waiting: HotRedis
) -> None:
    _, replica = pair
    key = f"cmtest-{uuid.uuid4().hex}"

    replies = await in_order(waiting, set_key(key, "said"))

    assert replies == [True]
    assert redis.Redis(port=replica.port).get(key) == b"said"  # at once: no wait for replication


async def test_a_replica_that_does_not_answer_delays_a_write_by_the_wait_at_most_and_is_logged(
    pair: tuple[OwnRedis, OwnRedis], waiting: HotRedis, caplog: pytest.LogCaptureFixture
) -> None:
    _, replica = pair
    key = f"cmtest-{uuid.uuid4().hex}"

    with caplog.at_level(logging.INFO, "callmemory.memory.hot.replicas"):
        with replica.paused():
            started = time.monotonic()
            replies = await in_order(waiting, set_key(key, "said"))
            took = time.monotonic() - started
        await in_order(waiting, set_key(key, "again"))

    assert replies == [True]
    assert took >= WAIT_S
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]  # short, then acknowledged again
    assert "without 1 replica(s)" in caplog.records[0].getMessage()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    if (missing := missing_binaries()) is not None:
        pytest.skip(missing)
    with LocalCluster(tmp_path / "cluster", replicas=1).running() as running:
        yield running


@pytest.fixture
async def waiting_cluster(cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    client = redis_client(cluster.url, max_connections=4, timeout_s=2, wait=ReplicaWait(1, WAIT_S))
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


async def keys_on_two_masters(client: RedisCluster) -> tuple[tuple[str, int], tuple[str, int]]:
    """Two keys whose slots two different masters serve, each with that master's port."""
    await client.initialize()
    found: dict[int, str] = {}
    for n in range(1000):
        key = f"cmtest-{uuid.uuid4().hex}-{n}"
        if (node := client.get_node_from_key(key)) is not None:
            found.setdefault(int(node.port), key)
        if len(found) == 2:
            (first, a), (second, b) = found.items()
            return (a, first), (b, second)
    raise AssertionError("every key fell on one master")


async def test_a_cluster_pipeline_waits_for_the_replica_of_each_master_it_wrote_to(
    cluster: LocalCluster, waiting_cluster: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    (one, master), (other, _) = await keys_on_two_masters(waiting_cluster)

    with caplog.at_level(logging.WARNING, "callmemory.memory.hot.replicas"):
        replies = await in_order(waiting_cluster, set_key(one, "a"), set_key(other, "b"))
        with cluster.paused(cluster.replica_of(master)):
            started = time.monotonic()
            paused_replies = await in_order(waiting_cluster, set_key(one, "c"), set_key(other, "d"))
            took = time.monotonic() - started

    assert replies == paused_replies == [True, True]
    assert took >= WAIT_S
    assert f"Redis writes on 127.0.0.1:{master} go on" in caplog.text


async def test_a_cluster_transaction_goes_as_it_is_with_replicas_to_wait_for(
    waiting_cluster: RedisCluster,
) -> None:
    # VoIPBin's state writes in MULTI; a WAIT inside it would answer at once, and its node is no key's.
    (key, _), _ = await keys_on_two_masters(waiting_cluster)

    async with waiting_cluster.pipeline(transaction=True) as pipe:
        pipe.hset(key, "field", "value")
        pipe.expire(key, 60)
        replies = await pipe.execute()

    assert replies == [1, True]
