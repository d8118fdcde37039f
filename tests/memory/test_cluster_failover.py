"""A Redis Cluster master dies mid-traffic and its replica takes over: no acknowledged turn is lost.

Redis replicates asynchronously, so that holds because each event waits for a replica to acknowledge its
writes (CALLMEMORY_REDIS_WAIT_REPLICAS=1, memory/hot/replicas.py). Without it, a master killed before its
replica had read the latest writes could take calls with it (seen in CI, on a loaded machine).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.redis_cluster import LocalCluster, missing_binaries

CALLS = 60
TURNS = 4
# A platform's redelivery: a 503 is tried again after a short pause, as VoIPBin and Twilio do.
RETRY_PAUSE_S = 0.2
MAX_TRIES = 100

pytestmark = pytest.mark.skipif(missing_binaries() is not None, reason=str(missing_binaries()))


async def test_a_master_killed_mid_traffic_loses_no_acknowledged_turn_and_gives_a_short_burst_of_503s(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any], tmp_path: Path
) -> None:
    with LocalCluster(tmp_path / "cluster", replicas=1).running() as cluster:
        on_cluster = settings.model_copy(
            update={"redis_url": cluster.url, "sweep_interval_s": 0.5, "redis_wait_replicas": 1}
        )
        async with running(on_cluster) as first, running(on_cluster) as second:
            refused = 0
            acknowledged = 0
            ids = itertools.count()

            async def deliver(http: httpx.AsyncClient, event: dict[str, Any]) -> None:
                nonlocal refused
                event = {**event, "event_id": f"ev-{next(ids)}"}  # the same on every redelivery
                for _ in range(MAX_TRIES):
                    response = await http.post("/webhook/call", json=event)
                    if response.status_code != 503:
                        assert response.status_code == 200, response.text
                        return
                    refused += 1
                    await asyncio.sleep(RETRY_PAUSE_S)
                raise AssertionError(f"{event['type']} refused {MAX_TRIES} times")

            async def one_call(n: int) -> None:
                nonlocal acknowledged
                # Each event to either instance, as a load balancer would spread them.
                instances = itertools.cycle((first, second) if n % 2 else (second, first))
                caller = f"+1415555{n:04d}"
                call = {"call_id": f"fo-{n}", "from": caller, "to": "+14155550000"}
                await deliver(next(instances), {"type": "call.ringing", **call})
                for turn in range(TURNS):
                    await deliver(
                        next(instances), {"type": "call.speech_recognized", **call, "speech": f"line {turn}"}
                    )
                    acknowledged += 1
                    await asyncio.sleep(0.05)
                await deliver(next(instances), {"type": "call.hangup", **call})

            killed: list[int] = []

            async def kill_a_master() -> None:
                await asyncio.sleep(0.5)
                killed.append(cluster.master_with_replica())
                cluster.kill(killed[0])

            masters = cluster.masters()
            try:
                await asyncio.gather(kill_a_master(), *(one_call(n) for n in range(CALLS)))
            finally:
                # Shown when the test fails: a failover besides the one made here (a master too slow to
                # answer its peers within cluster-node-timeout on a loaded machine) explains lost state.
                now = sorted(cluster.masters())
                print(f"\nmasters {sorted(masters)} before, {now} after, {killed} killed")

        rows = await sql(
            "SELECT count(*) AS n FROM turns t JOIN calls c ON c.id = t.call_id WHERE t.role = 'caller'"
        )
        calls = await sql("SELECT count(*) AS n FROM calls")

    print(f"\n{acknowledged} acknowledged caller turns, {rows[0].n} archived; {refused} answers were 503")
    assert rows[0].n == acknowledged == CALLS * TURNS
    assert calls[0].n == CALLS
    # A short burst: the replica's promotion takes a couple of seconds, during which only the calls on
    # the dead master's slots are refused, and each only until its retry after the promotion.
    assert refused <= CALLS * 10
