"""The summary job queue, in Postgres next to the calls it refers to.

Postgres rather than a Redis stream: a job is inserted in the very transaction that archives its call
(so no call is archived without its job, and no job exists for a call that is not archived), it is
deleted in the very transaction that stores its result (so running a job twice changes nothing), and an
erasure's cascade deletes it with the call. A worker claims a job by leasing it (`FOR UPDATE SKIP
LOCKED`, then `not_before` moved past the lease): no transaction stays open during the LLM call, several
workers never take the same job, and a job whose worker died is taken again when its lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import case, delete, func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningDelete, ReturningUpdate

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId
from callmemory.db.models import Call, Caller, SummaryJob, TurnRow
from callmemory.memory.archive import turn_of
from callmemory.memory.profile import clean_profile
from callmemory.memory.types import CallerMemory, CallSummary, Turn
from callmemory.memory.unfit import Unfit

_CLAIM = text(
    """
    UPDATE summary_jobs SET attempts = attempts + 1, not_before = now() + make_interval(secs => :lease)
    WHERE call_id = (
        SELECT call_id FROM summary_jobs
        WHERE not_before <= now() AND attempts < :max_attempts
        ORDER BY not_before, call_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING call_id, attempts, last_error
    """
)
# A degraded job (its summary made from the transcript) is parked: kept, to be requeued by an operator.
DEGRADED: Final = "degraded"
_PARKED: Final = datetime.max.replace(tzinfo=UTC)  # Postgres' 'infinity' is not a Python datetime


@dataclass(frozen=True, slots=True)
class SummaryTask:
    """Everything one summary needs: the finished call and the caller's memory before it."""

    job_id: int  # the archive's id of the call
    attempt: int  # 1 for the first try
    caller: CallerId
    call: CallRef
    started_at: datetime
    turns: tuple[Turn, ...]
    summary: str | None
    profile: dict[str, Any]
    call_summary: str | None = None  # the call's stored summary: the platform's, or a fallback's
    last_error: str | None = None  # why the previous try failed


@dataclass(frozen=True, slots=True)
class SummaryResult:
    call_summary: str
    caller_summary: str
    profile: dict[str, Any]
    next_greeting: str  # "": none prepared, the next ringing says the template
    # What was left out as unfit to keep (memory/unfit.py): counted, never stored.
    refused_greeting: Unfit | None = None
    refused_entries: tuple[Unfit, ...] = ()


class _Stale(Exception):
    """The caller's summary changed since the task was read (another call's job finished first)."""


class SummaryQueue:
    """Postgres operations on summary jobs. Knows nothing of LLMs."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(self, *, lease_s: float, max_attempts: int) -> SummaryTask | None:
        """Lease the next due job and read what it needs; None when no job is due."""
        while True:
            async with self._sessions.begin() as session:
                claimed = (
                    await session.execute(_CLAIM, {"lease": lease_s, "max_attempts": max_attempts})
                ).one_or_none()
            if claimed is None:
                return None
            task = await self._task(claimed.call_id, claimed.attempts, claimed.last_error)
            if task is not None:
                return task
            # Its caller was erased between the claim and the read: the job went with them.

    async def again(self, task: SummaryTask, *, lease_s: float, error: str) -> SummaryTask | None:
        """Count one more try of a job this worker holds, now, and renew its lease; None when the job
        is no longer this worker's (done meanwhile, erased, or taken by another after the lease)."""
        async with self._sessions.begin() as session:
            renewed = (
                await session.execute(
                    update(SummaryJob)
                    .where(SummaryJob.call_id == task.job_id, SummaryJob.attempts == task.attempt)
                    .values(
                        attempts=SummaryJob.attempts + 1,
                        not_before=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_s),
                        last_error=error[:1000],
                    )
                    .returning(SummaryJob.attempts)
                )
            ).scalar_one_or_none()
        return replace(task, attempt=renewed, last_error=error) if renewed is not None else None

    async def _task(self, job_id: int, attempt: int, last_error: str | None) -> SummaryTask | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Call, Caller).join(Caller, Caller.id == Call.caller_id).where(Call.id == job_id)
                )
            ).one_or_none()
            if row is None:  # erased between the claim and this read
                return None
            call, caller = row
            turns = (
                await session.execute(select(TurnRow).where(TurnRow.call_id == job_id).order_by(TurnRow.seq))
            ).scalars()
            return SummaryTask(
                job_id=job_id,
                attempt=attempt,
                caller=CallerId(bot_number=caller.bot_number, caller_hash=caller.caller_hash),
                call=CallRef(call.platform, call.external_id),
                started_at=call.started_at,
                turns=tuple(turn_of(t, call.external_id) for t in turns),
                summary=caller.summary,
                profile=clean_profile(caller.profile),
                call_summary=call.summary,
                last_error=last_error,
            )

    async def complete(
        self, task: SummaryTask, result: SummaryResult, *, replaces: str | None = None
    ) -> CallerMemory | None:
        """Store the result and delete the job, in one transaction.

        Returns the caller's new long-term memory, or None when there was nothing to do: the job was
        already done (or erased with its caller), or another job of this caller stored a newer rolling
        summary since this task was read — then this job is due again at once, to fold into that one.
        The call's stored summary is kept (the platform's) unless it is `replaces` (a fallback's).
        """
        done = delete(SummaryJob).where(SummaryJob.call_id == task.job_id).returning(SummaryJob.call_id)
        return await self._finish(task, result, done, replaces)

    async def degrade(self, task: SummaryTask, result: SummaryResult, *, error: str) -> CallerMemory | None:
        """Store a fallback result, and park the job as degraded (`requeue` makes it due again); None as
        for `complete`."""
        parked = (
            update(SummaryJob)
            .where(SummaryJob.call_id == task.job_id, SummaryJob.attempts == task.attempt)
            .values(not_before=_PARKED, last_error=f"{DEGRADED} ({error})"[:1000])
            .returning(SummaryJob.call_id)
        )
        return await self._finish(task, result, parked, None)

    async def _finish(
        self,
        task: SummaryTask,
        result: SummaryResult,
        job: ReturningDelete[Any] | ReturningUpdate[Any],
        replaces: str | None,
    ) -> CallerMemory | None:
        """`job` (which returns the job's id when it was still there) and the result, in one transaction."""
        try:
            async with self._sessions.begin() as session:
                if (await session.execute(job)).scalar_one_or_none() is None:
                    return None
                return await self._store(session, task, result, replaces)
        except _Stale:
            await self.retry(task, delay_s=0, error="the caller's summary changed meanwhile", counts=False)
            return None

    async def _store(
        self, session: AsyncSession, task: SummaryTask, result: SummaryResult, replaces: str | None
    ) -> CallerMemory:
        updated = (
            await session.execute(
                update(Caller)
                .where(
                    Caller.bot_number == task.caller.bot_number,
                    Caller.caller_hash == task.caller.caller_hash,
                    Caller.summary.is_not_distinct_from(task.summary),
                    Caller.profile == task.profile,
                )
                .values(
                    summary=result.caller_summary,
                    profile=result.profile,
                    next_greeting=result.next_greeting or None,
                )
                .returning(Caller.id)
            )
        ).scalar_one_or_none()
        if updated is None:
            raise _Stale
        # A summary the platform supplied with the call is kept; ours fills the gap.
        kept = func.coalesce(Call.summary, result.call_summary)
        await session.execute(
            update(Call)
            .where(Call.id == task.job_id)
            .values(
                summary=case((Call.summary == replaces, result.call_summary), else_=kept)
                if replaces
                else kept
            )
        )
        return CallerMemory(
            caller=task.caller,
            summary=result.caller_summary,
            profile=result.profile,
            greeting=result.next_greeting or None,
            call_summaries=(CallSummary(task.call.call_id, task.started_at, result.call_summary),),
        )

    async def retry(self, task: SummaryTask, *, delay_s: float, error: str, counts: bool = True) -> None:
        """Make the job due again after `delay_s`; with `counts=False` this try does not count."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(SummaryJob)
                .where(SummaryJob.call_id == task.job_id)
                .values(
                    not_before=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay_s),
                    last_error=error[:1000],
                    attempts=SummaryJob.attempts - (0 if counts else 1),
                )
            )

    async def pending(self) -> int:
        """Jobs not yet done (including degraded ones, which an operator may requeue)."""
        async with self._sessions() as session:
            return int((await session.execute(select(func.count()).select_from(SummaryJob))).scalar_one())

    async def requeue(self, *, degraded_only: bool, caller: CallerId | None = None) -> int:
        """Make jobs due now with a fresh count of tries: the degraded ones, or all (of one caller);
        returns how many."""
        job = update(SummaryJob).values(not_before=func.now(), attempts=0)
        if degraded_only:
            job = job.where(SummaryJob.not_before == _PARKED)
        if caller is not None:
            job = job.where(
                SummaryJob.call_id.in_(
                    select(Call.id)
                    .join(Caller, Caller.id == Call.caller_id)
                    .where(Caller.bot_number == caller.bot_number, Caller.caller_hash == caller.caller_hash)
                )
            )
        async with self._sessions.begin() as session:
            return len((await session.execute(job.returning(SummaryJob.call_id))).all())

    async def counts(self) -> JobCounts:
        """How many jobs are due, waiting for a retry, and degraded (by reason)."""
        state = case(
            (SummaryJob.not_before == _PARKED, SummaryJob.last_error),
            (SummaryJob.not_before <= func.now(), literal("due")),
            else_=literal("waiting"),
        )
        async with self._sessions() as session:
            rows = (await session.execute(select(state, func.count()).group_by(state))).all()
        counts = JobCounts()
        for name, n in rows:
            if name == "due":
                counts.due += n
            elif name == "waiting":
                counts.waiting += n
            else:
                reason = degraded_reason(name)
                counts.degraded[reason] = counts.degraded.get(reason, 0) + n
        return counts


@dataclass
class JobCounts:
    due: int = 0
    waiting: int = 0  # for a retry after a timeout or a provider error
    degraded: dict[str, int] = field(default_factory=dict)  # by the reason of the last failed try


def degraded_reason(error: str | None) -> str:
    """The reason in a degraded job's error, "degraded (wrong type: ...)": its first words."""
    inner = (error or "").removeprefix(DEGRADED).strip(" ()")
    return inner.split(":", 1)[0].replace(" ", "_") or "unknown"
