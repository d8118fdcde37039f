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
        self._process = start_redis(
            self._dir,
            self.port,
            *(("--appendonly", "yes", "--appendfsync", "always") if self._durable else ()),
            *("--save", ""),
            *(("--replicaof", "127.0.0.1", str(self._master)) if self._master else ()),
        )

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


def start_redis(data_dir: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    """A redis-server on `port` with its files and its log in `data_dir`, answering."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "redis.log"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), *options]
    process = subprocess.Popen([*command, "--logfile", str(log)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        # A server that exited (its port taken, say) says why in its log, rather than in 10 s of pings.
        assert process.poll() is None, f"redis-server on port {port} exited: {_tail(log)}"
        try:
            # A PONG (not LOADING), and from the server just started, not whatever else took the port.
            answering = redis.Redis(port=port, socket_timeout=0.5)
            if answering.ping() and answering.info("server")["process_id"] == process.pid:
                return process
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"redis-server on port {port} did not start: {_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path) -> str:
    return log.read_text()[-2000:] if log.exists() else "(no log)"


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
