"""The service's own CPU per webhook event, by event type, without the noise of a shared machine.

`load.py` measures latencies under load, where the driver, the stub LLM, Postgres, Redis and the other
worker share the 2 cores and figures move by 10 % from run to run. This script measures what one event
costs the service itself: one process calls the app's ASGI entry directly (the ASGI messages uvicorn
would send; uvicorn's own HTTP parsing is not counted), one event at a time, against the real stores
and `callmemory stub-llm` (0 ms) in a process of its own, and reads its own CPU time per event
(`time.process_time`). Calls: ringing, speech turns, hangup, from a pool of returning callers.

    ./dev run python bench/event_cpu.py [--calls 600] [--turns 3] [--callers 100] [--rounds 3] [--profile F]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import uvloop
from pydantic import SecretStr

from callmemory.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.services import scratch_settings, scratch_stores
from support.serving import stub_llm_process  # the tests' helpers, made importable above

BOT = "+14155550000"
ASGI = Any


async def post(app: ASGI, state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """One webhook request through the app, as uvicorn hands it over; the decoded JSON answer."""
    body = json.dumps(event).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhook/call",
        "raw_path": b"/webhook/call",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": state.copy(),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    if status != 200:
        raise RuntimeError(f"{event['type']} answered {status}: {sent[1]['body']!r}")
    answer: dict[str, Any] = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return answer


async def one_call(
    app: ASGI, state: dict[str, Any], caller: str, turns: int, cpu: dict[str, list[float]]
) -> None:
    call_id = f"e-{uuid.uuid4().hex[:16]}"
    events = [{"type": "call.ringing", "to": BOT}]
    events += [
        {
            "type": "call.speech_recognized",
            "speech": f"Question {n}: where is my order 4417?",
            "event_id": f"{n}",
        }
        for n in range(turns)
    ]
    events.append({"type": "call.hangup"})
    for event in events:
        started = time.process_time()
        await post(app, state, {"call_id": call_id, "from": caller, **event})
        cpu[str(event["type"]).removeprefix("call.")].append(time.process_time() - started)


async def main(llm_url: str, args: argparse.Namespace) -> None:
    calls, turns, callers, rounds, profile = args.calls, args.turns, args.callers, args.rounds, args.profile
    async with scratch_stores("eventcpu") as stores:
        settings = scratch_settings(
            stores,
            openai_api_key=SecretStr("sk-bench"),
            openai_base_url=llm_url,
            summary_worker=False,
            background_tasks=False,
        )
        app = create_app(settings)
        numbers = [f"+1415{n:07d}" for n in range(callers)]
        async with app.router.lifespan_context(app) as lifespan_state:
            state: dict[str, Any] = dict(lifespan_state or {})
            for number in numbers:  # every caller has called before: the ringings measured are returning
                await one_call(app, dict(state), number, turns, defaultdict(list))
            print(f"{calls} calls of {turns} turns per round, {callers} returning callers, CPU ms per event")
            print(f"{'round':>5} {'ringing':>9} {'speech':>9} {'hangup':>9} {'all':>9}")
            profiler = cProfile.Profile() if profile else None
            for n in range(1, rounds + 1):
                cpu: dict[str, list[float]] = defaultdict(list)
                if profiler is not None:
                    profiler.enable()
                for i in range(calls):
                    await one_call(app, dict(state), numbers[i % callers], turns, cpu)
                if profiler is not None:
                    profiler.disable()
                every = [v for values in cpu.values() for v in values]
                row = [statistics.fmean(cpu[k]) * 1000 for k in ("ringing", "speech_recognized", "hangup")]
                print(f"{n:>5} " + " ".join(f"{v:>9.3f}" for v in [*row, statistics.fmean(every) * 1000]))
            if profiler is not None and profile is not None:
                profiler.dump_stats(
                    profile
                )  # read with: python -m pstats FILE (the figures above include its cost)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per round")
    parser.add_argument("--turns", type=int, default=3, help="speech turns per call")
    parser.add_argument("--callers", type=int, default=100, help="returning callers in the pool")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write cProfile statistics of the measured rounds to this file")
    args = parser.parse_args()
    with stub_llm_process() as llm:
        uvloop.run(main(llm, args))
