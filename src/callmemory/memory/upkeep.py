"""The background tasks of every instance: the pending-archive flusher and the idle-call sweeper.

Both work through MemoryService, one pass at a time, and coordinate with other instances only through
Redis (leases on pending archives, a lock per swept call), so any number of instances may run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from callmemory.core.errors import StoreUnavailable
from callmemory.memory.service import MemoryService
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics

log = logging.getLogger(__name__)

_BATCH = 100
# Long enough for one pass over a batch; a pending archive claimed by an instance that then died is
# picked up again by another once its lease runs out.
_LEASE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class UpkeepSettings:
    flush_interval_s: float
    flush_backoff_max_s: float
    idle_call_s: float
    sweep_interval_s: float
    shutdown_flush_s: float


class Upkeep:
    def __init__(
        self, memory: MemoryService, settings: UpkeepSettings, metrics: Metrics | None = None
    ) -> None:
        self._memory = memory
        self._s = settings
        self._metrics = metrics or Metrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._every(self._s.flush_interval_s, self.flush, "flusher")),
            asyncio.create_task(self._every(self._s.sweep_interval_s, self.sweep, "sweeper")),
        ]

    async def stop(self) -> None:
        """Let both loops finish the pass they are in, then give pending archives one last chance.

        A pass is not cancelled halfway: an archive interrupted mid-transaction is work lost, and the
        connection it held has to be torn down. What does not finish in time is cancelled after all.
        """
        self._stopping.set()
        deadline = asyncio.get_running_loop().time() + self._s.shutdown_flush_s
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self._s.shutdown_flush_s)
            for task in late:
                # A cancellation can be lost in a race inside a library's timeout (Python 3.11's
                # wait_for, seen in redis-py's pool): the loop would run on, so it is repeated.
                while not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=0.2)
            await asyncio.gather(*late, return_exceptions=True)
        self._tasks = []
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        try:
            async with asyncio.timeout(left):
                await self.flush()
        except (TimeoutError, StoreUnavailable) as exc:
            log.warning(
                "pending archives not flushed at shutdown (another instance will): %s", describe_error(exc)
            )

    async def flush(self) -> bool:
        """One flusher pass; False if an archive is still failing."""
        result = await self._memory.flush_pending(limit=_BATCH, lease=_LEASE, retry_in=timedelta(0))
        self._metrics.flusher_runs.inc()
        self._metrics.flushed.inc(result.archived)
        if result.archived:
            log.info("flushed %d pending archives", result.archived)
        return result.failed == 0

    async def sweep(self) -> bool:
        swept = await self._memory.sweep_idle(
            idle=timedelta(seconds=self._s.idle_call_s), limit=_BATCH, lock_ttl=_LEASE
        )
        self._metrics.sweeper_runs.inc()
        self._metrics.calls_swept.inc(swept)
        return True

    async def _every(self, interval: float, run: Callable[[], Awaitable[bool]], name: str) -> None:
        """Run a pass every `interval`; after failures, wait twice as long each time, up to the maximum."""
        failures = 0
        while not self._stopping.is_set():
            wait = min(interval * 2**failures, max(interval, self._s.flush_backoff_max_s))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
                return  # stopping: the event was set before the wait ran out
            try:
                ok = await run()
            except StoreUnavailable as exc:
                log.warning("%s: a store is unavailable (%s); backing off", name, exc.message)
                ok = False
            except Exception:
                # A background task must never die of one bad pass; it is logged and retried.
                log.exception("%s pass failed", name)
                ok = False
            failures = 0 if ok else min(failures + 1, 16)
