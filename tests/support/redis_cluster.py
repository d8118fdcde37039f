"""A real Redis Cluster on loopback, of the machine's redis-server: three masters, each with a replica if
asked, on free ports, in a directory of its own; every process is stopped at the end."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from support.redis_server import paused, start_redis
from support.serving import free_port

MASTERS = 3


def missing_binaries() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    return f"{' and '.join(absent)} not on PATH: the Redis Cluster tests need them" if absent else None


def _replication(port: int) -> dict[str, Any]:
    """The node's INFO replication: its role, and a master's replicas (slave0, …) or a replica's link."""
    info: dict[str, Any] = redis.Redis(port=port, socket_timeout=0.5).info("replication")
    return info


@dataclass
class LocalCluster:
    root: Path
    replicas: int = 0
    ports: list[int] = field(default_factory=list)
    _processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        self.ports = [free_port(with_bus=True) for _ in range(MASTERS * (1 + self.replicas))]
        for port in self.ports:
            self._start_node(port)
        subprocess.run(
            [
                *("redis-cli", "--cluster", "create"),
                *(f"127.0.0.1:{port}" for port in self.ports),
                *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_until_ok()
        self.wait_until_replicated()

    def _start_node(self, port: int) -> None:
        self._processes[port] = start_redis(
            self.root / str(port),
            port,
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            # A dead master is noticed, and its replica promoted, within a few seconds.
            *("--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"),
            *("--save", "", "--appendonly", "no"),
        )

    def wait_until_ok(self, timeout_s: float = 30) -> None:
        """Until every running node says the cluster is ok (all slots served)."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = []
            for port, process in self._processes.items():
                if process.poll() is not None:
                    continue
                try:
                    states.append(redis.Redis(port=port, socket_timeout=0.5).cluster("info")["cluster_state"])
                except redis.RedisError:
                    states.append("down")
            if states and all(state == "ok" for state in states):
                return
            assert time.monotonic() < deadline, f"the cluster did not become ok: {states}"
            time.sleep(0.1)

    def wait_until_replicated(self, timeout_s: float = 30) -> None:
        """Until every replica has done its first sync and follows its master: a replica still syncing
        (its master writing the snapshot to disk, say) would be promoted empty."""
        deadline = time.monotonic() + timeout_s
        while True:
            infos = map(_replication, self.ports)
            links = [info.get("master_link_status") for info in infos if info["role"] == "slave"]
            if all(link == "up" for link in links):
                return
            assert time.monotonic() < deadline, f"the replicas did not sync: {links}"
            time.sleep(0.1)

    def masters(self) -> set[int]:
        """The ports of the running nodes that are masters now."""
        running = [port for port, process in self._processes.items() if process.poll() is None]
        return {port for port in running if _replication(port)["role"] == "master"}

    def master_with_replica(self) -> int:
        """The port of a master whose replica follows it."""
        for port in self.ports:
            info = _replication(port)
            if info["role"] == "master" and info.get("slave0", {}).get("state") == "online":
                return port
        raise AssertionError("no master has a replica that follows it")

    def replica_of(self, master: int) -> int:
        """The port of `master`'s replica."""
        return int(_replication(master)["slave0"]["port"])

    @contextmanager
    def paused(self, port: int) -> Iterator[None]:
        """The node on `port` stopped (SIGSTOP): it neither answers nor closes its sockets."""
        with paused(self._processes[port].pid):
            yield

    def kill(self, port: int) -> None:
        process = self._processes[port]
        process.kill()
        process.wait(10)

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self._processes.clear()

    @contextmanager
    def running(self) -> Iterator[LocalCluster]:
        try:
            self.start()
            yield self
        finally:
            self.stop()
            shutil.rmtree(self.root, ignore_errors=True)
