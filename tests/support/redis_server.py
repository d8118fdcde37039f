"""A redis-server of the test's own on a free port, to kill and start again mid-test, or to replicate
another and be paused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from support.serving import free_port


class OwnRedis:
    """Keeps its data in an append-only file, as production Redis should, so a restart keeps it; with
    `durable` false, in memory only (a benchmark's, which must not time fsyncs)."""

    def __init__(self, data_dir: Path, *, replica_of: int | None = None, durable: bool = True) -> None:
        self._dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._master = replica_of
        self._durable = durable
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._dir)),
                *(("--appendonly", "yes", "--appendfsync", "always") if self._durable else ()),
                *("--save", ""),
                *(("--replicaof", "127.0.0.1", str(self._master)) if self._master else ()),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def wait_until_replicating(self, timeout_s: float = 30) -> None:
        """Until this replica's link to its master is up (its first sync done)."""
        deadline = time.monotonic() + timeout_s
        while redis.Redis(port=self.port).info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync with its master"
            time.sleep(0.05)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The server stopped (SIGSTOP), as one that hangs: it neither answers nor closes its sockets."""
        assert self._process is not None
        with paused(self._process.pid):
            yield

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(10)

    @contextmanager
    def running(self) -> Iterator[OwnRedis]:
        self.start()
        try:
            yield self
        finally:
            if self._process is not None and self._process.poll() is None:
                self.kill()


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
