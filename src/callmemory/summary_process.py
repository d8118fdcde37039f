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

from callmemory.services import open_services
from callmemory.settings import Settings

log = logging.getLogger(__name__)

NICENESS = 10  # lower priority: a live call's request always goes first
_PARENT_CHECK_S = 1.0


async def run_summaries(settings: Settings, *, parent_pid: int | None = None) -> int:
    """Work on summary jobs until stopped; the exit status (1: no LLM configured to summarise with)."""
    settings = settings.model_copy(update={"summary_worker": True, "background_tasks": False})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_services(settings) as services:
        if services.summaries is None:
            log.error("no OPENAI_API_KEY: summary jobs stay queued until a worker with an LLM runs")
            return 1
        log.info("summary worker running (pid %d)", os.getpid())
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _PARENT_CHECK_S)
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("the serve process %d is gone: the summary worker stops", parent_pid)
                break
    return 0
