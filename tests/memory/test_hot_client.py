"""REDIS_URL picks the topology: one server, a cluster, or the master a set of sentinels names."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from callmemory.memory.hot.client import (
    GatedCluster,
    RedisUrlError,
    describe_store_error,
    redis_client,
    topology,
)
from support.redis_cluster import LocalCluster
from support.serving import free_port


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://10.0.0.1:7000",
        "rediss+cluster://user:pw@10.0.0.1:7000",
        "redis://10.0.0.1:7000?cluster=true",
        "redis://10.0.0.1:7000,10.0.0.2:7001",
    ],
)
def test_each_cluster_form_of_the_url_is_read_as_a_cluster(url: str) -> None:
    assert topology(url).kind == "cluster"
    assert topology(url).nodes[0] == ("10.0.0.1", 7000)


def test_a_host_list_names_every_startup_node() -> None:
    assert topology("redis://a:7000,b:7001,c").nodes == (("a", 7000), ("b", 7001), ("c", 6379))


def test_a_plain_url_is_one_server_even_with_other_query_options() -> None:
    assert topology("redis://10.0.0.1:6379/2?cluster=false").kind == "single"


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_database() -> None:
    where = topology("redis+sentinel://:pw@s1:26379,s2/mymaster/3")

    assert (where.kind, where.nodes, where.service, where.db) == (
        "sentinel",
        (("s1", 26379), ("s2", 26379)),
        "mymaster",
        3,
    )


def test_a_sentinel_url_without_a_master_name_is_refused_with_the_reason() -> None:
    with pytest.raises(RedisUrlError, match="names its master"):
        topology("redis+sentinel://s1:26379")


def test_a_store_error_is_described_without_the_pipelined_command() -> None:
    error = redis.ResponseError(
        "Command # 2 (EVALSHA abc 1 cm:{x}:turns I am +14155551234) of pipeline caused error: "
        "('MOVED 3999 127.0.0.1:7001',)"
    )

    described = describe_store_error(error)

    assert "MOVED 3999 127.0.0.1:7001" in described
    assert "EVALSHA" not in described
    assert "14155551234" not in described


async def test_a_cluster_url_gives_a_client_that_works_on_a_real_cluster(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "c").running() as cluster:
        client = redis_client(cluster.url, max_connections=4, timeout_s=2)
        try:
            assert isinstance(client, GatedCluster)
            await client.set("cm:{a}:x", "1")
            await client.set("cm:{b}:x", "2")
            assert [await client.get("cm:{a}:x"), await client.get("cm:{b}:x")] == ["1", "2"]
        finally:
            await client.aclose()


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A Redis master and one real sentinel watching it as `callmemory`: (master port, sentinel port)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH: the Sentinel test needs it")
    master, watcher = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {watcher}\nbind 127.0.0.1\nsentinel monitor callmemory 127.0.0.1 {master} 1\n")
    processes = [
        subprocess.Popen(["redis-server", "--port", str(master), "--save", ""], stdout=subprocess.DEVNULL),
        subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL),
    ]
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=watcher, socket_timeout=0.5).sentinel_master("callmemory")
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "the sentinel did not come up"
                time.sleep(0.1)
        yield master, watcher
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


async def test_a_sentinel_url_reaches_the_master_the_sentinel_names(sentinel: tuple[int, int]) -> None:
    master, watcher = sentinel
    client = redis_client(f"redis+sentinel://127.0.0.1:{watcher}/callmemory", max_connections=4, timeout_s=2)
    try:
        assert isinstance(client, Redis)
        await client.set("cmtest-sentinel", "here")
        assert redis.Redis(port=master).get("cmtest-sentinel") == b"here"
    finally:
        await client.aclose()
