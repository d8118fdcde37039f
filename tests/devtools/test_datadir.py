"""The data directory's lock: one owner at a time, named to whoever is refused, free when its owner dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from callmemory.devtools.datadir import DataDirInUse, DataDirLock, Owner

HOLD = """
import sys, time
from pathlib import Path
from callmemory.devtools.datadir import DataDirLock
DataDirLock(Path(sys.argv[1])).acquire("serve", host="127.0.0.1", port=8123)
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_owner_is_refused_with_the_first_ones_pid_and_port(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire("serve", host="127.0.0.1", port=8123)

    with pytest.raises(DataDirInUse) as refused:
        DataDirLock(tmp_path).acquire("serve", port=8124)

    assert refused.value.owner == Owner(pid=os.getpid(), command="serve", host="127.0.0.1", port=8123)
    assert f"pid {os.getpid()}, port 8123" in str(refused.value)
    assert str(tmp_path) in str(refused.value)


def test_a_released_directory_can_be_taken_and_has_no_owner(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire("stats")
    first.release()

    assert DataDirLock(tmp_path).owner() is None
    DataDirLock(tmp_path).acquire("serve", port=8123)


def test_the_owner_is_read_without_taking_the_directory(tmp_path: Path) -> None:
    DataDirLock(tmp_path).acquire("simulate")

    owner = DataDirLock(tmp_path).owner()

    assert owner == Owner(pid=os.getpid(), command="simulate")
    with pytest.raises(DataDirInUse, match="no HTTP port"):
        DataDirLock(tmp_path).acquire("serve")


def test_the_lock_of_a_killed_owner_is_taken_over(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    assert DataDirLock(tmp_path).owner() == Owner(holder.pid, "serve", "127.0.0.1", 8123)

    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    lock = DataDirLock(tmp_path)
    lock.acquire("serve", port=8125)

    assert DataDirLock(tmp_path).owner() == Owner(pid=os.getpid(), command="serve", port=8125)
