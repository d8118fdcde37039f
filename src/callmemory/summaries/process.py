"""The summary worker as a process of its own: how `serve` runs it beside its web workers.

In a web worker, summarising shares the event loop with live calls, so a caller could wait while a
transcript is prepared or a summary parsed. In its own process, at a lower CPU priority, it takes only
the CPU that calls leave over: under load the queue (durable in Postgres) grows, and it catches up
when the load falls. It exits when told to (SIGTERM, SIGINT) or when the process that started it is
gone, so that a killed `serve` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from callmemory.services import open_services
from callmemory.settings import Settings

log = logging.getLogger(__name__)

# The lowest priority: under a load peak the web workers take the CPU and summaries wait. At `nice` 10
# the summary worker still took up to a fifth of the machine from calls in the load benchmark. And in
# the idle scheduling class (Linux), where a waking web worker preempts it at once: at `nice` 19 alone
# it could keep a core for the rest of its time slice, milliseconds that a ringing waited through.
NICENESS = 19
_PARENT_CHECK_S = 1.0
_RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after each exit in a row; reset by a long run
_LONG_RUN_S = 60.0


async def run_summaries(settings: Settings, *, parent_pid: int | None = None) -> int:
    """Work on summary jobs until stopped; the exit status (1: no LLM configured to summarise with)."""
    settings = settings.model_copy(update={"summary_worker": True, "background_tasks": False})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_services(settings) as services:
        if services.summaries is None:
            log.error(
                "no OPENAI_API_KEY nor CALLMEMORY_SUMMARY_API_KEY: summary jobs stay queued until a worker "
                "with an LLM runs"
            )
            return 1
        log.info("summary worker running (pid %d)", os.getpid())
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _PARENT_CHECK_S)
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("the serve process %d is gone: the summary worker stops", parent_pid)
                break
    return 0


class SummaryProcess:
    """`callmemory summarise` as `serve`'s child: started with it, restarted if it dies, stopped with it.

    A thread waits on the child, so that a crashed worker does not leave summaries stopped until the
    next deployment; restarts back off while it keeps failing at once (a bad configuration, say).
    """

    def __init__(self, log_level: str) -> None:
        self._command = [
            sys.executable,
            "-m",
            "callmemory.cli",
            "summarise",
            "--log-level",
            log_level,
            "--nice",
            str(NICENESS),
            "--idle",
        ]
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="summary-process", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._watcher.join(timeout_s)

    def _spawn(self) -> None:
        env = {**os.environ, "CALLMEMORY_SUMMARY_PARENT_PID": str(os.getpid())}
        with self._lock:
            if not self._stopping.is_set():
                # Our own interpreter and module, no outside input.
                self._process = subprocess.Popen(self._command, env=env)  # noqa: S603

    def _watch(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            assert process is not None
            started = time.monotonic()
            status = process.wait()
            if self._stopping.is_set():
                return
            failures = 0 if time.monotonic() - started > _LONG_RUN_S else failures + 1
            delay = _RESTART_DELAYS_S[min(failures, len(_RESTART_DELAYS_S)) - 1] if failures else 0.0
            log.error("the summary worker exited (status %s); starting it again in %.0f s", status, delay)
            if self._stopping.wait(delay):
                return
            self._spawn()
