"""`callmemory serve` with no URLs configured: embedded real servers, migrated, kept across restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.serving import children_of_data_dir, embedded_data_dir, free_port, serving

CALLER = {"from": "+14155551234", "to": "+14155550000"}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with embedded_data_dir() as root:
        yield root / "data"


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
    assert children_of_data_dir(data_dir) == []  # both embedded servers stopped with the service
