"""`callmemory serve` with no URLs configured: embedded real servers, migrated, kept across restarts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from support.serving import free_port, serving

CALLER = {"from": "+14155551234", "to": "+14155550000"}


def _children_of_data_dir(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: the embedded PostgreSQL runs as another user, who must be able to
    # enter every parent folder, and pytest resets its own root to 0700 whenever another run starts.
    root = Path(tempfile.mkdtemp(prefix="callmemory-serve-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def test_serve_runs_on_embedded_servers_and_remembers_the_caller_after_a_restart(data_dir: Path) -> None:
    port = free_port()
    with serving(data_dir, port) as (http, _):
        http.post("/webhook/call", json={"type": "call.ringing", "call_id": "s-1", **CALLER})
        said = {"type": "call.speech_recognized", "call_id": "s-1", "speech": "My order 4417 never arrived."}
        assert http.post("/webhook/call", json={**said, "from": CALLER["from"]}).status_code == 200
        hangup = http.post("/webhook/call", json={"type": "call.hangup", "call_id": "s-1", **CALLER})
        assert hangup.json() == {"status": "archived"}

    with serving(data_dir, port) as (http, process):
        greeting = http.post("/webhook/call", json={"type": "call.ringing", "call_id": "s-2", **CALLER})

    output = process.stdout.read() if process.stdout else ""
    assert "My order 4417 never arrived" in greeting.json()["actions"][0]["text"]
    assert f"embedded PostgreSQL: {data_dir.resolve()}" in output
    assert (data_dir / "embedded" / "postgres" / "PG_VERSION").exists()
    assert process.returncode == 0
    assert _children_of_data_dir(data_dir) == []  # both embedded servers stopped with the service
