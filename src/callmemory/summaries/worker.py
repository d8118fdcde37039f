"""The background worker that summarises archived calls, off the request path.

It takes jobs from the Postgres queue (summaries/queue.py), asks the summariser, stores the result in the
archive and then in hot memory. A failed try is retried with exponential back-off, recorded on the job
itself, so retries survive a restart too. Started and stopped by the app's lifespan; tests can instead
call `drain()` to run the due jobs deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from callmemory.memory.hot.client import HOT_STORE_ERRORS
from callmemory.memory.hot.store import HotStore
from callmemory.observability.context import about_call
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics
from callmemory.summaries.queue import SummaryQueue, SummaryTask
from callmemory.summaries.summariser import Summariser, SummaryFailed

log = logging.getLogger(__name__)


class SummaryWorker:
    def __init__(
        self,
        queue: SummaryQueue,
        summariser: Summariser,
        hot: HotStore,
        *,
        poll_s: float,
        lease_s: float,
        max_attempts: int,
        retry_base_s: float,
        concurrency: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        self.queue = queue
        self.summariser = summariser
        self._hot = hot
        self._poll_s = poll_s
        self._lease_s = lease_s
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._metrics = metrics or Metrics()
        self._concurrency = concurrency
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run_once(self) -> bool:
        """Take one due job and work on it; False when none was due."""
        task = await self.queue.claim(lease_s=self._lease_s, max_attempts=self._max_attempts)
        if task is None:
            return False
        with about_call(task.call.call_id):
            await self._work(task)
        return True

    async def _work(self, task: SummaryTask) -> None:
        try:
            with self._metrics.timed(
                self._metrics.llm_seconds, purpose="summary", outcome="failed"
            ) as labels:
                result = await self.summariser.summarise(task)
                labels["outcome"] = "ok"
        except SummaryFailed as exc:
            delay = self._retry_base_s * 2 ** (task.attempt - 1)
            gave_up = task.attempt >= self._max_attempts
            self._metrics.summary_jobs.labels(outcome="abandoned" if gave_up else "failed").inc()
            if gave_up:
                log.error(
                    "summary of call %s failed %d times, giving up: %s", task.call.call_id, task.attempt, exc
                )
            else:
                log.warning(
                    "summary of call %s failed (try %d), retrying in %.0f s: %s",
                    task.call.call_id,
                    task.attempt,
                    delay,
                    exc,
                )
            await self.queue.retry(task, delay_s=delay, error=str(exc))
            return
        memory = await self.queue.complete(task, result)
        self._metrics.summary_jobs.labels(outcome="done").inc()
        if memory is not None:
            try:
                await self._hot.remember_summary(memory, memory.call_summaries[-1])
            except HOT_STORE_ERRORS as exc:
                # The archive has it; hot memory catches up when it next rehydrates.
                log.warning(
                    "summary of call %s stored, but not in Redis: %s", task.call.call_id, describe_error(exc)
                )
            log.info("summarised call %s", task.call.call_id)

    async def drain(self) -> int:
        """Work until no job is due; returns how many were taken."""
        taken = 0
        while await self.run_once():
            taken += 1
        return taken

    def nudge(self) -> None:
        """A call was archived: look for work now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("summary worker: the archive is unavailable, retrying: %s", describe_error(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)

    def start(self) -> None:
        """Work in the background, on several jobs at once: each spends most of its time waiting for the
        LLM, and one at a time a worker would summarise at most one call per LLM round trip."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"summary-worker-{n}") for n in range(self._concurrency)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
