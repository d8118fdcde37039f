"""`callmemory serve` summarises calls in a process of its own, at a lower CPU priority than the calls."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from callmemory.settings import Settings
from callmemory.summaries.process import NICENESS
from support.serving import event, free_port, service_env, serving, stub_llm_process
from support.waiting import eventually


def summary_processes(serve_pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(serve_pid).children()
        if "summarise" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE
    ]


async def test_serve_summarises_calls_in_its_own_process_at_lower_priority(
    settings: Settings, sql: Callable[..., Any], tmp_path: Path
) -> None:
    with stub_llm_process() as llm_url:
        env = service_env(settings, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm_url)
        with serving(tmp_path, free_port(), env, args=["--workers", "2"]) as (http, process):
            (worker,) = summary_processes(process.pid)
            for kind, fields in (
                ("call.ringing", {}),
                ("call.speech_recognized", {"speech": "My order 4417 never arrived."}),
                ("call.hangup", {}),
            ):
                assert http.post("/webhook/call", json=event(kind, "s-1", **fields)).status_code == 200

            async def summarised() -> bool:
                return bool(await sql("SELECT 1 FROM calls WHERE summary IS NOT NULL"))

            # The worker runs in the idle scheduling class: while every core is busy it gets a turn only
            # now and then, and a summary that takes a second on an idle machine took more than 15 s
            # beside two busy loops. The bound is for a hang.
            await eventually(summarised, within_s=120)
            niceness = worker.nice() - psutil.Process(process.pid).nice()
            policy = os.sched_getscheduler(worker.pid)

    assert niceness == NICENESS
    assert policy == os.SCHED_IDLE
    assert not worker.is_running(), "stopped with serve"


async def test_the_summary_process_stops_when_serve_is_killed(settings: Settings, tmp_path: Path) -> None:
    with stub_llm_process() as llm_url:
        env = service_env(settings, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm_url)
        with serving(tmp_path, free_port(), env) as (_, process):
            (worker,) = summary_processes(process.pid)
            process.send_signal(signal.SIGKILL)
            process.wait(10)

            async def stopped() -> bool:
                return not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE

            await eventually(stopped)


async def test_serve_starts_the_summary_process_again_when_it_dies(
    settings: Settings, tmp_path: Path
) -> None:
    with stub_llm_process() as llm_url:
        env = service_env(settings, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm_url)
        with serving(tmp_path, free_port(), env) as (_, process):
            (first,) = summary_processes(process.pid)
            first.kill()

            async def replaced() -> bool:
                return [p.pid for p in summary_processes(process.pid)] not in ([], [first.pid])

            await eventually(replaced)
            (second,) = summary_processes(process.pid)

    assert second.pid != first.pid
    assert not second.is_running(), "stopped with serve"


async def test_serve_without_an_llm_starts_no_summary_process(settings: Settings, tmp_path: Path) -> None:
    with serving(tmp_path, free_port(), service_env(settings)) as (_, process):
        assert summary_processes(process.pid) == []
