"""CPU per webhook event of its JSON and its models: the seed event parsed and its answer rendered, by way.

The stdlib's json against orjson and msgspec (when installed: neither is a dependency), and the seed
adapter's pydantic models against plain dicts, on a speech event's body and answer. Ways alternate,
round after round; this process's CPU time (`time.process_time`) per event.

    ./dev run python bench/json_codec.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from callmemory.core.events import Reply
from callmemory.platforms.seed import wire

BODY = json.dumps(
    {
        "type": "call.speech_recognized",
        "call_id": "c-0123456789abcdef",
        "from": "+14155551234",
        "to": "+14155550000",
        "speech": "Question 1: where is my order 4417? It was due on Tuesday.",
        "event_id": "c-0123456789abcdef-1",
    }
).encode()
REPLY = Reply("It left the warehouse yesterday and should reach you on Friday.", "listen")


def ways() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {
        "stdlib json, dict in and out": lambda: (
            json.loads(BODY),
            json.dumps({"actions": [{"type": "talk", "text": REPLY.say}, {"type": REPLY.then}]}).encode(),
        ),
        "pydantic models, stdlib json (today)": lambda: (
            wire.parse(BODY),
            json.dumps(wire.render(REPLY), separators=(",", ":")).encode(),
        ),
    }
    for name in ("orjson", "msgspec"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            print(f"{name} is not installed: left out")
            continue
        codec = module if name == "orjson" else module.json
        found[f"{name}, dict in and out"] = lambda codec=codec: (
            codec.loads(BODY) if hasattr(codec, "loads") else codec.decode(BODY),
            (codec.dumps if hasattr(codec, "dumps") else codec.encode)(
                {"actions": [{"type": "talk", "text": REPLY.say}, {"type": REPLY.then}]}
            ),
        )
    return found


def main(events: int, rounds: int) -> None:
    candidates = ways()
    cpu: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for name, way in candidates.items():
            started = time.process_time()
            for _ in range(events):
                way()
            cpu[name].append((time.process_time() - started) / events * 1e6)
    print(f"{events} events per way per round, {rounds} rounds alternating; CPU microseconds per event")
    for name, values in cpu.items():
        print(f"{name:<42}{statistics.median(values):>8.1f}{min(values):>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main(args.events, args.rounds)
