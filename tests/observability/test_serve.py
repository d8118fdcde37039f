"""`callmemory serve --workers 2`: metrics add up over the workers; its output is JSON lines with no
caller number and no fetch token, the access log included."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.metrics import Scrape
from support.serving import free_port, serving

CALLER = "+14155557788"
BOT = "+14155550000"
FETCH_TOKEN = "fetch-token-for-serve-0123"
CALLS = 12


@dataclass
class Served:
    scrapes: list[Scrape]
    output: str
    metric_files: list[Path]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    data_dir = tmp_path_factory.mktemp("serve-obs") / "data"
    env = {"CALLMEMORY_VOIPBIN_FETCH_TOKEN": FETCH_TOKEN}
    with serving(data_dir, free_port(), env, args=["--workers", "2"]) as (http, process):
        base = str(http.base_url)
        for n in range(CALLS):
            # A connection each, so that the kernel spreads the calls over both workers.
            with httpx.Client(base_url=base, timeout=10) as one:
                ringing = {"type": "call.ringing", "call_id": f"w-{n}", "from": CALLER, "to": BOT}
                assert one.post("/webhook/call", json=ringing).status_code == 200
        with httpx.Client(base_url=base, timeout=10) as one:
            fetched = one.request(
                "GET", f"/voipbin/fetch/{FETCH_TOKEN}/{BOT}/{CALLER}", content=b'{"reference_id": "vb-1"}'
            )
            assert fetched.status_code == 200, fetched.text
        scrapes = []
        for _ in range(6):
            with httpx.Client(base_url=base, timeout=10) as one:
                scrapes.append(Scrape(one.get("/metrics").text))
        metric_files = sorted((data_dir / "metrics").glob("counter_*.db"))
    return Served(scrapes, process.stdout.read() if process.stdout else "", metric_files)


def test_every_scrape_counts_the_events_of_all_workers(served: Served) -> None:
    counted = {
        s.value("callmemory_webhook_events_total", platform="seed", type="ringing", outcome="answered")
        for s in served.scrapes
    }

    assert len(served.metric_files) >= 2, "both workers took requests"
    assert counted == {CALLS}


def test_serve_logs_json_lines_without_the_caller_number_or_the_fetch_token(served: Served) -> None:
    logged = [line for line in served.output.splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in logged if '"uvicorn.access"' in line]

    assert any("/voipbin/fetch/***/***/***" in line["message"] for line in access)
    assert all(CALLER not in line and CALLER[1:] not in line and FETCH_TOKEN not in line for line in logged)
    assert CALLER not in served.output
    assert FETCH_TOKEN not in served.output
