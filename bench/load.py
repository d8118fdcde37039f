"""Load driver: many concurrent simulated seed-format calls against the service run as in production.

It creates a fresh database on the local Postgres, starts `callmemory stub-llm --delay-ms D` and
`callmemory serve --workers N` (DATABASE_URL / REDIS_URL pointing at the local servers, a Redis prefix of
its own, CALLMEMORY_ENVIRONMENT=production), then runs, for each scenario, C concurrent callers that each
place calls back to back for a while: ringing, T speech turns, hangup. Callers come from a pool of
returning numbers, so most ringings find memory and some rehydrate it. It prints events/s and
p50/p95/p99 per event type, and for speech the memory overhead (response time minus the stub's delay).

    ./dev run python bench/load.py                      # the issue's scenarios
    ./dev run python bench/load.py --scenario 0:50 --seconds 10 --workers 2
    ./dev run python bench/load.py --profile out.svg    # py-spy record of the service while it runs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis
import uvloop

from callmemory.memory.hot.client import topology
from callmemory.platforms.seed import signing

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL = "redis://127.0.0.1:6379/0"
# Production mode requires one; every event is signed with it, as a platform would.
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
BOT = "+14155550000"
CALLMEMORY = [sys.executable, "-m", "callmemory.cli"]
CPU_PARTS = ("web workers", "summary worker", "stub LLM", "driver", "redis", "postgres", "other")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.latencies[kind].append(seconds)
        self.statuses[status] += 1
        if status != 200:
            self.errors[kind] += 1


def _process_table() -> dict[int, tuple[int, str, float]]:
    """Every process on the machine: pid -> (parent pid, name, CPU seconds used so far), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            head, fields = (entry / "stat").read_text().rsplit(")", 1)
            rest = fields.split()
            name = head.split("(", 1)[1]
            table[int(entry.name)] = (int(rest[1]), name, (int(rest[11]) + int(rest[12])) / tick)
    return table


def _descendants(table: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree


def cpu_by_part(service: int, stub: int) -> dict[str, float]:
    """CPU seconds used so far (user + system), by part of the benchmark: the service's web workers and
    its summary worker, the stub LLM, this driver, Redis, Postgres, and everything else on the machine
    (exited processes are not counted)."""
    table = _process_table()
    parts: dict[str, float] = defaultdict(float)
    web = _descendants(table, service)
    stubs = _descendants(table, stub)
    for pid, (_, name, seconds) in table.items():
        if pid in web:
            with contextlib.suppress(OSError):
                if b"summarise" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    parts["summary worker"] += seconds
                    continue
            parts["web workers"] += seconds
        elif pid in stubs:
            parts["stub LLM"] += seconds
        elif pid == os.getpid():
            parts["driver"] += seconds
        elif name.startswith("redis"):
            parts["redis"] += seconds
        elif name.startswith("postgres"):
            parts["postgres"] += seconds
        else:
            parts["other"] += seconds
    return parts


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Callers:
    """The pool of numbers that call, and which of them have called before."""

    pool: list[str]
    called: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, size: int) -> Callers:
        return cls([f"+1415{n:07d}" for n in range(size)])

    def not_called(self) -> list[str]:
        return [n for n in self.pool if n not in self.called]


async def one_call(
    http: aiohttp.ClientSession,
    url: str,
    caller: str,
    turns: int,
    *,
    stats: Stats,
    callers: Callers,
    pause_s: float = 0.0,
    verified_share: float = 0.0,
) -> None:
    call_id = f"b-{uuid.uuid4().hex[:16]}"
    # A first call goes to Postgres for the caller's memory (and finds none): reported on its own.
    ringing = "ringing" if caller in callers.called else "ringing, new caller"
    callers.called.add(caller)

    async def send(kind: str, event: dict[str, Any]) -> None:
        started = time.perf_counter()
        body = json.dumps({"call_id": call_id, "from": caller, **event}).encode()
        headers = signing.signed_headers(WEBHOOK_SECRET.encode(), body)
        try:
            async with http.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            # A connection refused or reset under overload is a failed event, not the end of the run.
            status = 599
        stats.add(kind, time.perf_counter() - started, status)

    ring: dict[str, Any] = {"type": "call.ringing", "to": BOT}
    if verified_share and random.random() < verified_share:
        ring["caller_verified"] = True  # the platform vouches for the number (docs/caller-trust.md)
    await send(ringing, ring)
    for n in range(turns):
        # The bot's answer being spoken and the caller's next sentence; 0: events back to back.
        await asyncio.sleep(pause_s)
        speech = f"Question {n}: where is my order {random.randint(1000, 9999)}?"
        await send(
            "speech", {"type": "call.speech_recognized", "speech": speech, "event_id": f"{call_id}-{n}"}
        )
    await asyncio.sleep(pause_s)
    await send("hangup", {"type": "call.hangup"})


async def drive(
    base_url: str,
    concurrency: int,
    seconds: float,
    turns: int,
    callers: Callers,
    *,
    pause_s: float = 0.0,
    verified_share: float = 0.0,
) -> tuple[Stats, float]:
    stats = Stats()
    url = f"{base_url}/webhook/call"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        deadline = time.perf_counter() + seconds

        async def caller_loop() -> None:
            # Calls start spread over the first second, as they would arrive, not all in one instant
            # (in lockstep every ringing would queue behind 49 others for the whole run).
            await asyncio.sleep(random.uniform(0, 1 + pause_s))
            while time.perf_counter() < deadline:
                caller = random.choice(callers.pool)
                await one_call(
                    http,
                    url,
                    caller,
                    turns,
                    stats=stats,
                    callers=callers,
                    pause_s=pause_s,
                    verified_share=verified_share,
                )

        started = time.perf_counter()
        await asyncio.gather(*(caller_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return stats, elapsed


async def call_each(base_url: str, turns: int, callers: Callers) -> None:
    """One call from each number that has not called yet, 50 at a time: returning callers from then on."""
    url = f"{base_url}/webhook/call"
    todo = callers.not_called()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def caller_loop() -> None:
            while todo:
                await one_call(http, url, todo.pop(), turns, stats=Stats(), callers=callers)

        await asyncio.gather(*(caller_loop() for _ in range(50)))


def warm_up(base_url: str, turns: int, callers: Callers, *, every_caller: bool) -> None:
    started = time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(drive(base_url, 10, 2, turns, callers))
        if every_caller:
            runner.run(call_each(base_url, turns, callers))
    print(f"\nwarm-up: {time.perf_counter() - started:.0f} s; {len(callers.called)} callers have called")


def report(title: str, stats: Stats, elapsed: float, delay_ms: float, cpu: dict[str, float]) -> None:
    total = sum(len(v) for v in stats.latencies.values())
    print(f"\n{title}: {total} events in {elapsed:.1f} s = {total / elapsed:.0f} events/s")
    # CPU per event is steadier than events/s on a machine shared with the driver, stub and databases.
    web = cpu["web workers"]
    print(
        f"  service CPU: web workers {web:.1f} s = {web / elapsed:.2f} cores, "
        f"{1000 * web / max(total, 1):.2f} ms per event; summary worker {cpu['summary worker']:.1f} s"
    )
    # Where the machine's 2 cores went: the service is not alone on them.
    shares = ", ".join(f"{part} {seconds / elapsed:.2f}" for part, seconds in cpu.items())
    used = sum(cpu.values())
    print(f"  cores used: {shares}, idle {(os.cpu_count() or 1) - used / elapsed:.2f}")
    print(f"  CPU per event, all parts: {1000 * used / max(total, 1):.2f} ms")
    print(f"  HTTP statuses: {dict(sorted(stats.statuses.items()))}")
    print(f"  {'event':<18}{'count':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = dict(stats.latencies)
    if "speech" in rows:
        rows["speech overhead"] = [v - delay_ms / 1000 for v in rows["speech"]]
    for kind, values in rows.items():
        ms = [v * 1000 for v in values]
        print(
            f"  {kind:<18}{len(ms):>7}{stats.errors.get(kind, 0):>8}"
            f"{statistics.median(ms):>9.1f}{percentile(ms, 95):>9.1f}{percentile(ms, 99):>9.1f}"
        )


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process, started and waited for until a line of its output contains `ready`."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if ready in line:
            break
    else:
        raise RuntimeError(f"{args} exited before it was ready")
    # Keep draining output so the child never blocks on a full pipe.
    drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=log.open("w"))
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        drain.wait(5)


async def create_database(name: str) -> None:
    conn = await asyncpg.connect(**POSTGRES, database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(**POSTGRES, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def summary_backlog(name: str) -> tuple[int, int]:
    """Summary jobs still queued, and calls archived so far."""
    conn = await asyncpg.connect(**POSTGRES, database=name)
    try:
        queued = await conn.fetchval("SELECT count(*) FROM summary_jobs")
        archived = await conn.fetchval("SELECT count(*) FROM calls")
        return int(queued), int(archived)
    finally:
        await conn.close()


def report_backlog(database: str, drain_s: float) -> None:
    """The summary worker runs at a lower priority than calls: say how far behind the load left it."""
    queued, archived = asyncio.run(summary_backlog(database))
    print(f"  summary jobs queued: {queued} (of {archived} calls archived)", end="")
    started = time.monotonic()
    while queued and time.monotonic() - started < drain_s:
        time.sleep(0.5)
        queued, _ = asyncio.run(summary_backlog(database))
    waited = time.monotonic() - started
    print(
        f"; {queued} still queued after {waited:.0f} s without load"
        if queued
        else f"; drained in {waited:.1f} s"
    )


def purge_redis(url: str, prefix: str) -> None:
    if topology(url).kind != "single":
        return  # a cluster or Sentinel set of the run's own (bench/redis_topologies.py) goes with it
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def wait_ready(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("the service did not become ready")


def environment(
    args: argparse.Namespace, database: str, prefix: str, data_dir: Path, stub_port: int
) -> dict[str, str]:
    """The service's environment: local stores under names of the run's own, the stub as its LLM."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLMEMORY_")},
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": args.redis_url,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{stub_port}/v1",
        "CALLMEMORY_ENVIRONMENT": "production",
        "CALLMEMORY_HASH_SECRET": "bench-secret-0123456789abcdef",
        "CALLMEMORY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # Production refuses to start without a choice: today's behaviour unless --set says otherwise.
        "CALLMEMORY_DISCLOSURE": "open",
        "CALLMEMORY_REDIS_PREFIX": prefix,
        "CALLMEMORY_DATA_DIR": str(data_dir),
        # off: jobs queue in Postgres for summary workers elsewhere (`callmemory summarise`)
        "CALLMEMORY_SUMMARY_WORKER": str(args.summaries == "process").lower(),
        **dict(setting.split("=", 1) for setting in args.set),
    }


def granian_command(args: argparse.Namespace, port: int, env: dict[str, str]) -> tuple[list[str], str]:
    """The service measured under granian instead of uvicorn, with the same number of workers; for
    callmemory without `serve`'s summary process (run with `--summaries off`), migrated first."""
    granian = [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--no-ws"]
    granian += ["--no-access-log", "--log-level", "info", "--host", "127.0.0.1", "--port", str(port)]
    granian += ["--workers", str(args.workers)]
    if args.service == "null":
        return [
            *granian,
            "--working-dir",
            str(Path(__file__).resolve().parent),
            "null_service:app",
        ], "Listening"
    subprocess.run([*CALLMEMORY, "migrate"], env=env, check=True, capture_output=True)
    return [*granian, "--factory", "callmemory.app:create_served_app"], "Listening"


def serve_command(args: argparse.Namespace, port: int, env: dict[str, str]) -> tuple[list[str], str]:
    """The command that runs the service measured, and a line of its output that says it has started."""
    if args.server == "granian":
        return granian_command(args, port, env)
    if args.service == "null":
        null = ["null_service:app", "--app-dir", str(Path(__file__).resolve().parent)]
        uvicorn = [sys.executable, "-m", "uvicorn", *null, "--no-access-log"]
        return [*uvicorn, "--port", str(port), "--workers", str(args.workers)], "Uvicorn running"
    serve = [*CALLMEMORY, "serve", "--port", str(port), "--workers", str(args.workers)]
    return [*serve, *args.serve_args.split()], "API docs"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario",
        action="append",
        help="DELAY_MS:CONCURRENCY, repeatable (default: 0:50, 0:200, 400:50, 400:200)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help="the service's REDIS_URL, any form (docs/scaling.md); default: %(default)s",
    )
    parser.add_argument(
        "--service",
        choices=["callmemory", "null"],
        default="callmemory",
        help="null: a service that does nothing but answer and call the stub (bench/null_service.py), "
        "under the same workers, driver and stub: the floor that the machine and the harness allow",
    )
    parser.add_argument(
        "--server",
        choices=["uvicorn", "granian"],
        default="uvicorn",
        help="the ASGI server (granian: installed apart, not a dependency)",
    )
    parser.add_argument(
        "--serve-args",
        default="--no-access-log",
        help="more arguments of `callmemory serve` (default: %(default)s)",
    )
    parser.add_argument(
        "--summaries",
        choices=["process", "off"],
        default="process",
        help="summarise calls in serve's summary process (the default), or leave the jobs queued",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one more environment variable of the service, repeatable (CALLMEMORY_SEARCH_ENABLED=false)",
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="per scenario")
    parser.add_argument("--turns", type=int, default=3, help="speech turns per call")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=0.0,
        help="pause before each event after the ringing, as on a phone line where the bot's answer is "
        "spoken and the caller answers it (default: none, events back to back)",
    )
    parser.add_argument(
        "--verified-share",
        type=float,
        default=0.0,
        help="the share of calls whose ringing says caller_verified (the platform vouches for the number); "
        "with --set CALLMEMORY_DISCLOSURE=verified the others are kept apart from the caller's memory",
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=60.0, help="how long to wait for queued summaries after each"
    )
    parser.add_argument(
        "--new-callers",
        action="store_true",
        help="do not call every number of the pool once before measuring: first calls are measured too",
    )
    parser.add_argument("--callers", type=int, default=500, help="size of the pool of (returning) callers")
    parser.add_argument(
        "--profile", help="record the service with py-spy: an .svg flame graph, or .txt collapsed stacks"
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    scenarios = [
        tuple(float(x) for x in s.split(":")) for s in args.scenario or ["0:50", "0:200", "400:50", "400:200"]
    ]

    callers = Callers.of(args.callers)
    summaries = args.service == "callmemory" and args.summaries == "process"
    database = f"callmemory_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_database(database))
    data_dir = Path(tempfile.mkdtemp(prefix="callmemory-bench-"))
    try:
        for delay_ms in sorted({d for d, _ in scenarios}):
            stub_port, port = free_port(), free_port()
            env = environment(args, database, prefix, data_dir, stub_port)
            stub = [*CALLMEMORY, "stub-llm", "--port", str(stub_port), "--delay-ms", str(delay_ms)]
            serve, ready = serve_command(args, port, env)
            service_log = data_dir / f"service-{delay_ms:.0f}ms.log"
            with (
                process(stub, env, "listening", data_dir / "stub.log") as stub_process,
                process(serve, env, ready, service_log) as service,
            ):
                base_url = f"http://127.0.0.1:{port}"
                wait_ready(base_url)
                warm_up(base_url, args.turns, callers, every_caller=not args.new_callers)
                if summaries:
                    # The warm-up's summaries are worked off first, not during the measured window.
                    report_backlog(database, args.drain_seconds)
                profiler = None
                if args.profile:
                    out = Path(args.profile).with_stem(f"{Path(args.profile).stem}-{delay_ms:.0f}ms")
                    fmt = "raw" if out.suffix == ".txt" else "flamegraph"
                    spy = [shutil.which("py-spy") or "py-spy", "record", "--subprocesses", "--format", fmt]
                    profiler = subprocess.Popen(
                        [*spy, "-o", str(out), "--pid", str(service.pid)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                for scenario_delay, concurrency in scenarios:
                    if scenario_delay != delay_ms:
                        continue
                    cpu_before = cpu_by_part(service.pid, stub_process.pid)
                    # On uvloop: the driver shares the 2 cores with the service it measures.
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        stats, elapsed = runner.run(
                            drive(
                                base_url,
                                int(concurrency),
                                args.seconds,
                                args.turns,
                                callers,
                                pause_s=args.pause_ms / 1000,
                                verified_share=args.verified_share,
                            )
                        )
                    cpu_after = cpu_by_part(service.pid, stub_process.pid)
                    cpu = {part: cpu_after[part] - cpu_before[part] for part in CPU_PARTS}
                    title = f"stub delay {delay_ms:.0f} ms, {concurrency:.0f} concurrent calls"
                    title += f", {args.workers} workers" + (", granian" if args.server == "granian" else "")
                    title += ", THE NULL SERVICE (bench/null_service.py)" if args.service == "null" else ""
                    title += f", {args.pause_ms:.0f} ms between a call's events" if args.pause_ms else ""
                    report(title, stats, elapsed, delay_ms, cpu)
                    if args.service == "callmemory":
                        # With --summaries off nothing works the queue off here: no wait for it.
                        report_backlog(database, args.drain_seconds if summaries else 0)
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(60)
            problems = Counter(
                problem for line in service_log.read_text().splitlines() if (problem := _problem(line))
            )
            for message, count in problems.most_common(5):
                print(f"  service log x{count}: {message}")
    finally:
        asyncio.run(drop_database(database))
        purge_redis(args.redis_url, prefix)
        shutil.rmtree(data_dir, ignore_errors=True)


def _problem(line: str) -> str | None:
    """A warning or an error of the service's log, shortened: its JSON lines (production) or plain text."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            return str(entry.get("message", ""))[:100]
        return None
    if line.startswith(("WARNING", "ERROR")):
        return line.split(":", 2)[-1].strip()[:100]
    return None


if __name__ == "__main__":
    main()
