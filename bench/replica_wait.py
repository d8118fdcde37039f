"""What CALLMEMORY_REDIS_WAIT_REPLICAS=1 costs a round trip: the service's lean round trip (one SET)
with and without WAIT, against a master and one replica of the machine's redis-server, started here on
free ports without persistence (the tests' OwnRedis) and stopped at the end.

One trip at a time; wall time and this process's CPU time per trip, the two ways alternating, round
after round; medians, and each round's pair.

    ./dev run python bench/replica_wait.py [--trips 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvloop

from callmemory.memory.hot.client import redis_client
from callmemory.memory.hot.lua import Pipe, in_order
from callmemory.memory.hot.replicas import ReplicaWait

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import OwnRedis  # the tests' own servers, made importable above


@contextmanager
def master_and_replica() -> Iterator[str]:
    """The master's URL, once its replica follows it."""
    # The replica's first sync goes through a snapshot on disk: in a directory of the run's own.
    with tempfile.TemporaryDirectory(prefix="cmbench-") as folder:
        master = OwnRedis(Path(folder, "master"), durable=False)
        replica = OwnRedis(Path(folder, "replica"), replica_of=master.port, durable=False)
        with master.running(), replica.running():
            replica.wait_until_replicating()
            yield master.url


def _write(pipe: Pipe) -> None:
    pipe.set("cmbench-replica-wait", "said")


async def _per_trip(url: str, *, wait: bool, trips: int) -> tuple[float, float]:
    """Wall and CPU microseconds per trip."""
    client = redis_client(url, max_connections=8, timeout_s=2, wait=ReplicaWait(1, 0.25) if wait else None)
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
    with master_and_replica() as url:
        figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(rounds):
            for wait in (False, True):
                figures[wait].append(await _per_trip(url, wait=wait, trips=trips))
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
