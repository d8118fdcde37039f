"""`callmemory serve` with no URLs configured: embedded real servers, migrated, kept across restarts; and
the data directory's one owner."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.metrics import Scrape
from support.serving import children_of_data_dir, embedded_data_dir, free_port, refused_serve, serving

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
    assert "caller memory:       OPEN to anyone presenting the number (CALLMEMORY_DISCLOSURE unset)" in output
    assert (data_dir / "embedded" / "postgres" / "PG_VERSION").exists()
    assert process.returncode == 0
    assert children_of_data_dir(data_dir) == []  # both embedded servers stopped with the service


@dataclass
class Running:
    data_dir: Path
    port: int
    http: httpx.Client
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """One `serve` that the tests below try to start a second one beside."""
    with embedded_data_dir() as root, serving(root / "data", free_port()) as (http, process):
        yield Running(root / "data", int(str(http.base_url).rsplit(":", 1)[1].rstrip("/")), http, process)


def ringing(http: httpx.Client, call_id: str) -> float:
    """Rings once; returns the ringing count /metrics shows afterwards."""
    assert http.post("/webhook/call", json={"type": "call.ringing", "call_id": call_id, **CALLER}).is_success
    return Scrape(http.get("/metrics").text).value(
        "callmemory_webhook_events_total", platform="seed", type="ringing", outcome="answered"
    )


def state_of(running: Running) -> tuple[list[tuple[str, float]], set[int]]:
    """What a refused second serve must leave alone: the metrics files, the embedded servers."""
    metrics = sorted((p.name, p.stat().st_mtime) for p in (running.data_dir / "metrics").iterdir())
    return metrics, {p.pid for p in children_of_data_dir(running.data_dir)}


@pytest.mark.parametrize("same_port", [True, False], ids=["same port", "other port"])
def test_a_second_serve_on_a_data_directory_in_use_is_refused_naming_the_owner_and_touches_nothing(
    running: Running, same_port: bool
) -> None:
    counted = ringing(running.http, f"before-{same_port}")
    before = state_of(running)

    second = refused_serve(running.data_dir, running.port if same_port else free_port())

    assert second.returncode != 0
    assert f"pid {running.process.pid}, port {running.port}" in second.stderr
    assert "callmemory starting" not in second.stdout
    assert state_of(running) == before
    assert ringing(running.http, f"after-{same_port}") == counted + 1  # the first one's metrics go on


def test_a_taken_port_is_found_before_any_store_is_started() -> None:
    with embedded_data_dir() as root, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        refused = refused_serve(root / "data", taken.getsockname()[1])

        assert refused.returncode != 0
        assert f"cannot listen on 127.0.0.1:{taken.getsockname()[1]}" in refused.stderr
        assert not (root / "data" / "embedded").exists()
        assert not (root / "data" / "metrics").exists()


def test_the_data_directory_of_a_killed_serve_is_taken_over_with_its_embedded_servers(data_dir: Path) -> None:
    port = free_port()
    with serving(data_dir, port) as (http, process):
        http.post("/webhook/call", json={"type": "call.ringing", "call_id": "k-1", **CALLER})
        left_running = {p.pid for p in children_of_data_dir(data_dir)} - {process.pid}
        process.send_signal(signal.SIGKILL)  # no atexit: the lock file and the embedded servers stay
        process.wait(10)

    with serving(data_dir, port) as (http, process):
        assert http.get("/readyz").status_code == 200
        adopted = {p.pid for p in children_of_data_dir(data_dir)} - {process.pid}

    assert left_running
    assert adopted == left_running  # the same servers, adopted rather than started again
    assert process.returncode == 0
    assert children_of_data_dir(data_dir) == []  # and stopped by their new owner
