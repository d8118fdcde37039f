"""The background worker that summarises archived calls, off the request path.

It takes jobs from the Postgres queue (summaries/queue.py), asks the summariser, stores the result in the
archive and then in hot memory. A try that failed in a way it would again is asked again at once, with a
changed request; a timeout or a provider error is retried with exponential back-off, recorded on the job
itself, so retries survive a restart too; and a job out of tries gets the summary made from the
transcript (summaries/fallback.py), so that no caller's memory stays frozen. Started and stopped by the
app's lifespan; tests can instead call `drain()` to run the due jobs deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from callmemory.memory.hot.client import HOT_STORE_ERRORS
from callmemory.memory.hot.store import HotStore
from callmemory.memory.types import CallerMemory
from callmemory.observability.context import about_call
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics
from callmemory.summaries.answer import SummaryFailed
from callmemory.summaries.fallback import call_summary, fallback_result
from callmemory.summaries.gate import LiveAnswers
from callmemory.summaries.queue import SummaryQueue, SummaryResult, SummaryTask
from callmemory.summaries.summariser import Summariser

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
        live: LiveAnswers | None = None,
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
        self._live = live  # set when summaries share the live answers' endpoint
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run_once(self) -> bool:
        """Take one due job and work on it; False when none was due."""
        await self._quiet()
        task = await self.queue.claim(lease_s=self._lease_s, max_attempts=self._max_attempts)
        if task is None:
            return False
        with about_call(task.call.call_id):
            await self._work(task)
        return True

    async def _quiet(self) -> None:
        if self._live is not None:
            await self._live.wait_quiet()

    async def _work(self, task: SummaryTask) -> None:
        """Ask until there is a summary. A failure the same request would repeat is asked again at once
        with a changed request; a timeout or a provider error later, with back-off; and when the tries are
        spent or nothing is left to change, the summary is made from the transcript."""
        plan = self.summariser.first_plan(task)
        while True:
            try:
                with self._metrics.timed(
                    self._metrics.llm_seconds, purpose="summary", outcome="failed"
                ) as labels:
                    result = await self.summariser.summarise(task, plan)
                    labels["outcome"] = "ok"
            except SummaryFailed as failure:
                self._metrics.summary_failures.labels(reason=failure.reason.value).inc()
                changed = (
                    self.summariser.next_plan(task, plan, failure.reason) if failure.reason.repeats else plan
                )
                if changed is None or task.attempt >= self._max_attempts:
                    await self._degrade(task, failure)
                    return
                if not failure.reason.repeats:
                    await self._retry_later(task, failure)
                    return
                log.info("summary of call %s: %s; asking again, changed", task.call.call_id, failure)
                await self._quiet()
                again = await self.queue.again(task, lease_s=self._lease_s, error=str(failure))
                if again is None:
                    return  # no longer this worker's job
                task, plan = again, changed
                continue
            self._count_refused(task, result)
            # A job requeued after its fallback: the call's summary is the fallback's, replaced now.
            made = call_summary(task)
            replaces = made if task.call_summary == made else None
            memory = await self.queue.complete(task, result, replaces=replaces)
            await self._stored(task, memory, new_call=replaces is None)
            self._metrics.summary_jobs.labels(outcome="done").inc()
            return

    def _count_refused(self, task: SummaryTask, result: SummaryResult) -> None:
        """Count and log what the model wrote that was left out: the reasons only, never the text, which
        may quote the caller."""
        if (reason := result.refused_greeting) is not None:
            self._metrics.greetings_refused.labels(reason=reason.value).inc()
            log.info(
                "summary of call %s: the prepared greeting was refused (%s); the template will be said",
                task.call.call_id,
                reason.value,
            )
        for reason in result.refused_entries:
            self._metrics.profile_entries_refused.labels(reason=reason.value).inc()
        if result.refused_entries:
            log.info(
                "summary of call %s: profile entries refused: %d (%s)",
                task.call.call_id,
                len(result.refused_entries),
                ", ".join(sorted({r.value for r in result.refused_entries})),
            )

    async def _retry_later(self, task: SummaryTask, failure: SummaryFailed) -> None:
        delay = self._retry_base_s * 2 ** (task.attempt - 1)
        self._metrics.summary_jobs.labels(outcome="failed").inc()
        log.warning(
            "summary of call %s failed (try %d), retrying in %.0f s: %s",
            task.call.call_id,
            task.attempt,
            delay,
            failure,
        )
        await self.queue.retry(task, delay_s=delay, error=str(failure))

    async def _degrade(self, task: SummaryTask, failure: SummaryFailed) -> None:
        """The summary from the transcript, so that the caller's memory moves on; the job is kept as
        degraded, for `callmemory summaries requeue`."""
        self._metrics.summary_jobs.labels(outcome="degraded").inc()
        self._metrics.summary_degraded.labels(reason=failure.reason.value).inc()
        log.warning(
            "summary of call %s failed (try %d, %s): made from the transcript instead (degraded)",
            task.call.call_id,
            task.attempt,
            failure,
        )
        result = fallback_result(task)
        memory = await self.queue.degrade(task, result, error=str(failure))
        await self._stored(task, memory, new_call=task.call_summary != result.call_summary)

    async def _stored(self, task: SummaryTask, memory: CallerMemory | None, *, new_call: bool) -> None:
        if memory is None:
            return
        # A call summarised before by the fallback has a summary in Redis already, under its id: the
        # archive has the new one, and hot memory takes it at its next rehydration.
        latest = memory.call_summaries[-1] if new_call else None
        try:
            await self._hot.remember_summary(memory, latest)
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
        """Work in the background, on `concurrency` jobs at once: each spends most of its time waiting for
        the LLM, but a server on CPU answers one request after another anyway."""
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
