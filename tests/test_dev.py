"""`./dev`, the one entry point of a fresh clone: its usage, and a lock file that has fallen behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "callmemory-dev"


def dev(*args: str, cwd: Path = ROOT, venv: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHON": sys.executable}
    env["CALLMEMORY_TOOLS"] = str(TOOLS)
    if venv is not None:
        env["CALLMEMORY_VENV"] = str(venv)
    command = ["bash", str(cwd / "dev"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_without_a_command_it_prints_its_usage_and_fails() -> None:
    ran = dev()

    assert ran.returncode == 2
    assert ran.stderr.startswith("One entry point for a fresh machine")
    assert "./dev serve" in ran.stderr
    assert "set -euo" not in ran.stderr


def test_run_without_a_command_prints_the_usage_and_fails() -> None:
    ran = dev("run")

    assert ran.returncode == 2
    assert "./dev run CMD..." in ran.stderr


def test_a_lock_that_does_not_match_pyproject_fails_with_the_command_that_updates_it(tmp_path: Path) -> None:
    if not any(TOOLS.glob("uv-*/bin/uv")):
        pytest.skip(f"./dev has not bootstrapped uv into {TOOLS} here, and this test installs nothing")
    for name in ("dev", "pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(
        re.sub(r"dependencies = \[\n", 'dependencies = [\n    "orjson>=3.10",\n', pyproject, count=1)
    )

    ran = dev("lint", cwd=tmp_path, venv=tmp_path / "venv")

    assert ran.returncode == 1
    assert "uv.lock does not match pyproject.toml: run ./dev lock" in ran.stderr
