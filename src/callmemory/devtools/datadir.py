"""One owner per data directory: `<data dir>/owner.lock`, locked (flock) by the process that uses it.

The kernel drops a flock when its holder exits, however it exits (kill -9 included), so the lock of a
dead owner is free by construction and the next process simply takes it; nothing has to judge whether
a recorded pid is still alive. The file's content, the holder's pid, command and port, serves only to
name the holder to a process that is refused. The file is never deleted: a process that had opened
the old file would lock a name nobody else sees.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_FILE = "owner.lock"
# The holder writes its name just after taking the lock; a reader that comes in between waits this long.
_NAME_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a data directory: `callmemory <command>` in process `pid`, serving HTTP on `port`."""

    pid: int
    command: str
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        where = f", port {self.port}" if self.port is not None else ", no HTTP port"
        return f"`callmemory {self.command}` (pid {self.pid}{where})"


class DataDirInUse(RuntimeError):
    """Another live process owns the data directory."""

    def __init__(self, data_dir: Path, owner: Owner | None) -> None:
        held = str(owner) if owner else "another process (which has not written its name yet)"
        super().__init__(f"the data directory {data_dir} is in use by {held}")
        self.owner = owner


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, command: str, *, host: str | None = None, port: int | None = None) -> None:
        """Take the directory, or raise DataDirInUse naming its owner. Held until release() or exit."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: the embedded servers this process starts must not keep holding the lock after it.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise DataDirInUse(self.data_dir, owner) from None
        self._fd = fd
        self.name(Owner(pid=os.getpid(), command=command, host=host, port=port))

    def name(self, owner: Owner) -> None:
        """Record who holds the lock (again, e.g. once the port is known)."""
        assert self._fd is not None, "name() needs the lock"
        data = json.dumps(asdict(owner)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def owner(self) -> Owner | None:
        """The live process holding the directory, or None when it is free (never taking it)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_owner(fd)
            return None  # closing the descriptor drops the shared lock just taken
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_owner(fd: int) -> Owner | None:
    deadline = time.monotonic() + _NAME_WAIT_S
    while True:
        with contextlib.suppress(ValueError, TypeError):
            return Owner(**json.loads(os.pread(fd, 4096, 0)))
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
