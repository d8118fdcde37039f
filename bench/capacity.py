"""Capacity in paced calls: how many calls one machine carries before a turn gets 100 ms slower.

For each configuration, `bench/load.py` runs the service (production mode, 2 workers, the stub LLM at
400 ms) and a ladder of concurrent paced calls (a caller pausing `--pause-ms` between events, as on a
phone line), one service start per configuration and round; the rounds alternate the configurations, so
that a machine that drifts moves them all alike. A rung is carried when the speech turns' overhead (the
answer's time less the stub's delay) has a p95 of at most `--budget-ms` and no event failed. The
capacity is the largest rung carried.

    ./dev run python bench/capacity.py --ladder 100,200,400,600 --rounds 2 \\
        --config open: --config verified:CALLMEMORY_DISCLOSURE=verified \\
        --config before:@/path/to/an/older/checkout

A configuration is `NAME:SETTING=VALUE,...` (settings of the service, as load.py's --set), or
`NAME:@DIR` to run the load driver and the service of another checkout (with its own ./dev venv), e.g.
the commit before a change. `--verified-share` is the share of ringings the platform vouches for.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
_TITLE = re.compile(r"^stub delay \d+ ms, (\d+) concurrent calls")
_ROW = re.compile(
    r"^\s+(speech overhead|speech|ringing|hangup)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
)


@dataclass
class Config:
    name: str
    settings: list[str] = field(default_factory=list)
    checkout: Path | None = None  # another checkout's driver and service

    @classmethod
    def parse(cls, text: str) -> Config:
        name, _, rest = text.partition(":")
        if rest.startswith("@"):
            return cls(name, checkout=Path(rest[1:]).resolve())
        return cls(name, [s for s in rest.split(",") if s])

    def command(self, args: argparse.Namespace) -> list[str]:
        root = self.checkout or HERE.parent
        python = str(root / ".venv" / "bin" / "python") if self.checkout else sys.executable
        command = [python, str(root / "bench" / "load.py"), "--pause-ms", str(args.pause_ms)]
        command += [
            "--seconds",
            str(args.seconds),
            "--turns",
            str(args.turns),
            "--callers",
            str(args.callers),
            "--drain-seconds",
            str(args.drain_seconds),
        ]
        command += [arg for rung in args.ladder for arg in ("--scenario", f"{args.delay_ms}:{rung}")]
        if not self.checkout:  # an older driver may not know the option
            command += ["--verified-share", str(args.verified_share)]
        return command + [arg for setting in self.settings for arg in ("--set", setting)]


@dataclass
class Rung:
    overhead_p95: float
    speech_p95: float
    errors: int
    events: int


def parse(output: str) -> dict[int, Rung]:
    """Each rung's speech overhead p95 and errors, from load.py's report."""
    rungs: dict[int, Rung] = {}
    concurrency = None
    errors = events = 0
    speech_p95 = 0.0
    for line in output.splitlines():
        if (title := _TITLE.match(line)) is not None:
            concurrency, errors, events = int(title.group(1)), 0, 0
        elif concurrency is not None and (row := _ROW.match(line)) is not None:
            kind, count, failed, _, p95, _ = row.groups()
            if kind == "speech overhead":
                rungs[concurrency] = Rung(float(p95), speech_p95, errors, events)
                concurrency = None
            else:
                errors += int(failed)
                events += int(count)
                if kind == "speech":
                    speech_p95 = float(p95)
    return rungs


def capacity(rungs: dict[int, Rung], budget_ms: float) -> int:
    carried = [c for c, r in sorted(rungs.items()) if r.overhead_p95 <= budget_ms and r.errors == 0]
    return max(carried, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", action="append", required=True, help="NAME:SETTINGS or NAME:@CHECKOUT")
    parser.add_argument("--ladder", default="100,200,300,400,600", help="concurrent calls per rung")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--delay-ms", type=int, default=400, help="the stub LLM's delay")
    parser.add_argument("--pause-ms", type=int, default=2000, help="a caller's pause between events")
    parser.add_argument("--seconds", type=float, default=30.0, help="per rung")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--callers", type=int, default=500)
    parser.add_argument("--budget-ms", type=float, default=100.0, help="the p95 a turn may be slower by")
    parser.add_argument("--verified-share", type=float, default=0.5)
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        help="load.py's wait for queued summaries after each rung",
    )
    parser.add_argument("--log", type=Path, help="keep load.py's full reports here")
    args = parser.parse_args()
    args.ladder = [int(n) for n in args.ladder.split(",")]
    configs = [Config.parse(c) for c in args.config]

    results: dict[str, list[dict[int, Rung]]] = {c.name: [] for c in configs}
    for round_ in range(args.rounds):
        order = configs if round_ % 2 == 0 else list(reversed(configs))
        for config in order:
            ran = subprocess.run(config.command(args), capture_output=True, text=True, check=False)
            if args.log is not None:
                with args.log.open("a") as log:
                    log.write(f"\n===== round {round_ + 1}, {config.name}\n{ran.stdout}{ran.stderr}")
            rungs = parse(ran.stdout)
            if ran.returncode != 0:
                # An older driver ends on a connection reset under overload: the rungs it reported
                # stand, the rest count as not carried.
                print(
                    f"round {round_ + 1}, {config.name}: load.py ended with {ran.returncode} after "
                    f"{len(rungs)} rungs: {ran.stderr.strip().splitlines()[-1:]}",
                    flush=True,
                )
            results[config.name].append(rungs)
            print(
                f"round {round_ + 1}, {config.name}: capacity {capacity(rungs, args.budget_ms)} calls",
                flush=True,
            )
            for concurrency, rung in sorted(rungs.items()):
                print(
                    f"  {concurrency:>5} calls: speech overhead p95 {rung.overhead_p95:7.1f} ms, "
                    f"speech p95 {rung.speech_p95:7.1f} ms, {rung.errors} errors of {rung.events} events",
                    flush=True,
                )

    print(f"\ncapacity (largest rung with speech overhead p95 <= {args.budget_ms:.0f} ms and no error):")
    first = configs[0].name
    for config in configs:
        caps = [capacity(r, args.budget_ms) for r in results[config.name]]
        base = [capacity(r, args.budget_ms) for r in results[first]]
        ratios = [c / b if b else float("nan") for c, b in zip(caps, base, strict=True)]
        shown = ", ".join(f"{c}" for c in caps)
        vs = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"  {config.name:<12} per round: {shown}  (against {first}: {vs})")


if __name__ == "__main__":
    main()
