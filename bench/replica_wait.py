"""What CALLMEMORY_REDIS_WAIT_REPLICAS=1 costs a round trip: the service's lean round trip (one SET)
with and without WAIT, against a master and one replica of the machine's redis-server, started here on
free ports without persistence and stopped at the end.

One trip at a time; wall time and this process's CPU time per trip, the two ways alternating, round
after round; medians, and each round's pair.

    ./dev run python bench/replica_wait.py [--trips 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
import uvloop

from callmemory.memory.hot.client import redis_client
from callmemory.memory.hot.lua import Pipe, in_order
from callmemory.memory.hot.replicas import ReplicaWait


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def master_and_replica() -> Iterator[int]:
    """The master's port, once its replica follows it."""
    master, replica = _free_port(), _free_port()
    # The replica's first sync goes through a snapshot on disk: in a directory of the run's own.
    folder = tempfile.TemporaryDirectory(prefix="cmbench-")
    plain = ("--bind", "127.0.0.1", "--dir", folder.name, "--save", "", "--appendonly", "no")
    servers = [
        subprocess.Popen(["redis-server", "--port", str(master), *plain], stdout=subprocess.DEVNULL),
        subprocess.Popen(
            ["redis-server", "--port", str(replica), *plain, "--replicaof", "127.0.0.1", str(master)],
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if redis.Redis(port=replica).info("replication").get("master_link_status") == "up":
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.1)
        yield master
    finally:
        for server in servers:
            server.kill()
            server.wait(10)
        folder.cleanup()


def _write(pipe: Pipe) -> None:
    pipe.set("cmbench-replica-wait", "said")


async def _per_trip(port: int, *, wait: bool, trips: int) -> tuple[float, float]:
    """Wall and CPU microseconds per trip."""
    client = redis_client(
        f"redis://127.0.0.1:{port}/0",
        max_connections=8,
        timeout_s=2,
        wait=ReplicaWait(1, 0.25) if wait else None,
    )
    try:
        for _ in range(200):  # connections made, scripts of the interpreter warm
            await in_order(client, _write)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(trips):
            await in_order(client, _write)
        return (time.perf_counter() - wall) / trips * 1e6, (time.process_time() - cpu) / trips * 1e6
    finally:
        await client.aclose()


async def _main(trips: int, rounds: int) -> None:
    with master_and_replica() as port:
        figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(rounds):
            for wait in (False, True):
                figures[wait].append(await _per_trip(port, wait=wait, trips=trips))
    for wait, name in ((False, "without WAIT"), (True, "with WAIT 1")):
        wall = statistics.median(f[0] for f in figures[wait])
        cpu = statistics.median(f[1] for f in figures[wait])
        print(f"{name:>13}: {wall:6.1f} µs wall, {cpu:6.1f} µs CPU per trip (medians of {rounds})")
    pairs = ", ".join(f"{a[0]:.0f}/{b[0]:.0f}" for a, b in zip(figures[False], figures[True], strict=True))
    print(f"each round's wall µs, without/with: {pairs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    uvloop.run(_main(options.trips, options.rounds))
