"""The service's own CPU per webhook event, by event type, without the noise of a shared machine.

`load.py` measures latencies under load, where the driver, the stub LLM, Postgres, Redis and the other
worker share the 2 cores and figures move by 10 % from run to run. This script measures what one event
costs the service itself: one process calls the app's ASGI entry directly (the ASGI messages uvicorn
would send; uvicorn's own HTTP parsing is not counted), one event at a time, against the real stores
and `callmemory stub-llm` (0 ms) in a process of its own, and reads its own CPU time per event
(`time.process_time`). Calls: ringing, speech turns, hangup, from a pool of returning callers.

    ./dev run python bench/event_cpu.py [--calls 600] [--turns 3] [--callers 100] [--rounds 3] [--profile F]
    ./dev run python bench/event_cpu.py --service null       # the same events through null_service.py
    ./dev run python bench/event_cpu.py --against HEAD~1 --pairs 5   # alternated with another commit
    ./dev run python bench/event_cpu.py --against A --against B      # with two (each run in turn)

`--against REF` checks REF out in a temporary git worktree and runs this script in turn from that tree
and from this one, then from the null service, `--pairs` times, each run a process of its own: the
machine's drift falls on the three alike, and the figures come out as ratios to the null floor.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvloop
from pydantic import SecretStr

from callmemory.app import create_app

# With --against, the other commit's tree (its src/ on PYTHONPATH, its tests' helpers here).
sys.path.insert(
    0, str(Path(os.environ.get("EVENT_CPU_TREE") or Path(__file__).resolve().parent.parent) / "tests")
)
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


@asynccontextmanager
async def served(service: str, llm_url: str) -> AsyncIterator[tuple[ASGI, dict[str, Any]]]:
    """The app measured, its lifespan entered, and the state its requests carry."""
    if service == "null":
        os.environ["OPENAI_BASE_URL"] = llm_url
        sys.path.insert(0, os.path.dirname(__file__))
        from null_service import NullService

        null = NullService()
        await null.startup()
        try:
            yield null, {}
        finally:
            await null.shutdown()
        return
    async with scratch_stores("eventcpu") as stores:
        settings = scratch_settings(
            stores,
            openai_api_key=SecretStr("sk-bench"),
            openai_base_url=llm_url,
            summary_worker=False,
            background_tasks=False,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app) as lifespan_state:
            yield app, dict(lifespan_state or {})


async def main(llm_url: str, args: argparse.Namespace) -> None:
    calls, turns, callers, rounds, profile = args.calls, args.turns, args.callers, args.rounds, args.profile
    numbers = [f"+1415{n:07d}" for n in range(callers)]
    async with served(args.service, llm_url) as (app, state):
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
            # read with: python -m pstats FILE (the figures above include its cost)
            profiler.dump_stats(profile)


KINDS = ("ringing", "speech", "hangup", "all")
ROW = re.compile(r"^\s*\d+((?:\s+[\d.]+){4})$")


def run_once(tree: Path, args: argparse.Namespace, service: str) -> list[list[float]]:
    """This script on `tree`'s code (its src/ and its tests' helpers), as a process of its own: its rows
    of figures."""
    command = [sys.executable, __file__, "--service", service]
    command += ["--calls", str(args.calls), "--turns", str(args.turns), "--callers", str(args.callers)]
    command += ["--rounds", str(args.rounds)]
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "EVENT_CPU_TREE": str(tree)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return [[float(v) for v in m.group(1).split()] for line in out.splitlines() if (m := ROW.match(line))]


def against(refs: list[str], args: argparse.Namespace) -> None:
    here = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(here)]
    with tempfile.TemporaryDirectory(prefix="event-cpu-") as scratch:
        sides: dict[str, tuple[Path, str]] = {}
        for n, ref in enumerate(refs):
            tree = Path(scratch) / f"before-{n}"
            subprocess.run([*git, "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
            sides[f"before ({ref})"] = (tree, "callmemory")
        sides["after (this tree)"] = (here, "callmemory")
        sides["null service"] = (here, "null")
        figures: dict[str, list[list[float]]] = defaultdict(list)
        try:
            for pair in range(1, args.pairs + 1):
                for name, (tree, service) in sides.items():
                    rows = run_once(tree, args, service)
                    figures[name] += rows
                    alls = ", ".join(f"{row[3]:.3f}" for row in rows)
                    print(f"pair {pair}: {name:<20} all events {alls} ms", flush=True)
        finally:
            for name, (tree, _) in sides.items():
                if name.startswith("before"):
                    subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=True)
    null = statistics.median(row[3] for row in figures["null service"])
    print(f"\nCPU ms per event, median of {args.pairs} alternating runs x {args.rounds} rounds each")
    print(f"{'':<22}" + "".join(f"{k:>10}" for k in KINDS) + f"{'x null':>9}")
    for name, rows in figures.items():
        medians = [statistics.median(row[i] for row in rows) for i in range(4)]
        print(f"{name:<22}" + "".join(f"{v:>10.3f}" for v in medians) + f"{medians[3] / null:>9.2f}")
    after = statistics.median(r[3] for r in figures["after (this tree)"])
    rounds = args.rounds
    for ref in refs:
        old = statistics.median(r[3] for r in figures[f"before ({ref})"])
        less = (1 - after / old) * 100
        print(f"after / before ({ref}), all events: {after / old:.2f} ({less:+.0f} % less)")
        # Each pair's own ratio: its two runs were next to each other, so they share the machine's state.
        ratios = sorted(
            statistics.median(r[3] for r in figures["after (this tree)"][p * rounds : (p + 1) * rounds])
            / statistics.median(r[3] for r in figures[f"before ({ref})"][p * rounds : (p + 1) * rounds])
            for p in range(args.pairs)
        )
        listed = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"  pair by pair: {listed}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per round")
    parser.add_argument("--turns", type=int, default=3, help="speech turns per call")
    parser.add_argument("--callers", type=int, default=100, help="returning callers in the pool")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write cProfile statistics of the measured rounds to this file")
    parser.add_argument(
        "--service",
        choices=["callmemory", "null"],
        default="callmemory",
        help="null: bench/null_service.py, which only answers and calls the stub: the floor",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        action="append",
        help="alternate with this git commit (and the null service); repeatable",
    )
    parser.add_argument("--pairs", type=int, default=3, help="with --against: runs of each side")
    args = parser.parse_args()
    if args.against:
        against(args.against, args)
    else:
        with stub_llm_process() as llm:
            uvloop.run(main(llm, args))
