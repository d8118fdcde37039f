"""Events/s of the service on one Redis server and on a Redis Cluster, in one run.

Starts a 3-master Redis Cluster on loopback (tests/support/redis_cluster.py, the machine's redis-server),
then runs bench/load.py with the same scenario twice: against the local Redis (127.0.0.1:6379) and
against the cluster; prints both reports and the ratio of their events/s.

    ./dev run python bench/redis_topologies.py                   # 0:50 for 15 s on each
    ./dev run python bench/redis_topologies.py --scenario 0:200 --seconds 20 --workers 2
    ./dev run python bench/redis_topologies.py --set CALLMEMORY_SEARCH_ENABLED=false
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.redis_cluster import LocalCluster, missing_binaries  # noqa: E402

_EVENTS = re.compile(r"([\d.]+) events/s")


def run_load(redis_url: str, passthrough: list[str]) -> tuple[str, float | None]:
    command = [sys.executable, str(HERE / "load.py"), "--redis-url", redis_url, *passthrough]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rates = [float(m) for m in _EVENTS.findall(out)]
    return out, rates[0] if rates else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default="0:50")
    parser.add_argument("--seconds", default="15")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="as load.py's")
    args = parser.parse_args()
    if (why := missing_binaries()) is not None:
        raise SystemExit(why)
    passthrough = ["--scenario", args.scenario, "--seconds", args.seconds, "--workers", args.workers]
    passthrough += [f"--set={setting}" for setting in args.set]
    single, single_rate = run_load("redis://127.0.0.1:6379/0", passthrough)
    print("== one Redis server\n" + single)
    with LocalCluster(Path(tempfile.mkdtemp(prefix="callmemory-bench-cluster-"))).running() as cluster:
        clustered, cluster_rate = run_load(cluster.url, passthrough)
    print("== Redis Cluster, 3 masters on loopback\n" + clustered)
    if single_rate and cluster_rate:
        print(
            f"events/s: one server {single_rate:.0f}, cluster {cluster_rate:.0f}, "
            f"cluster/server {cluster_rate / single_rate:.2f}"
        )


if __name__ == "__main__":
    main()
