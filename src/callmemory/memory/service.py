"""The memory service: a caller's memory during calls (live.py), their calls archived (archiving.py),
and the upkeep the background tasks and the operator's commands do, here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from callmemory.memory.archiving import ArchiveAttempt, ArchivingMemory
from callmemory.memory.hot.client import HOT_STORE_ERRORS
from callmemory.memory.hot.store import QuarantinedCall
from callmemory.memory.types import LiveCall

log = logging.getLogger(__name__)

_ANY_STORE_ERROR: tuple[type[Exception], ...] = (*HOT_STORE_ERRORS, SQLAlchemyError)


@dataclass(frozen=True, slots=True)
class FlushResult:
    archived: int = 0
    failed: int = 0  # still waiting for the archive, which is unreachable
    refused: int = 0  # refused by Postgres for their own data: retried later, or quarantined


class MemoryService(ArchivingMemory):
    """Everything the service does with memory: the layers before, and the upkeep passes."""

    # -- upkeep: what the background tasks do, one pass at a time ---------------------------------
    async def flush_pending(self, *, limit: int, lease: timedelta, retry_in: timedelta) -> FlushResult:
        """Archive calls whose archiving failed earlier. Failures are retried `retry_in` from now."""
        now = self._now()
        async with self.stores("claiming pending archives"):
            due = await self._hot.claim_pending(now, now + lease, limit)
        archived = failed = refused = 0
        for n, (call, caller) in enumerate(due):
            async with self.stores("reading a pending call"):
                live = await self._hot.begin_end(call, caller)
            if live is None:
                # Archived meanwhile by a retried hangup, or its state was lost with Redis.
                async with self.stores("dropping a finished pending archive"):
                    await self._hot.forget_pending(call, caller)
                continue
            attempt = await self._try_archive(live, retry_at=now + retry_in)
            if attempt is ArchiveAttempt.REFUSED:
                refused += 1  # this call's own data: no reason to hold back the rest of the batch
                continue
            if attempt is ArchiveAttempt.UNREACHABLE:
                # Postgres is still down: the rest of the batch would only wait for the same failure.
                failed = len(due) - n
                async with self.stores("rescheduling pending archives"):
                    for rest_call, rest_caller in due[n + 1 :]:
                        await self._hot.mark_pending(rest_call, rest_caller, now + retry_in)
                break
            archived += 1
        return FlushResult(archived=archived, failed=failed, refused=refused)

    async def sweep_idle(self, *, idle: timedelta, limit: int, lock_ttl: timedelta) -> int:
        """Archive calls with no event for `idle` (a missed hangup, a crashed instance); how many.

        The idle clock counts from the caller's last attempt, and while Redis was down their attempts
        were refused without a trace: each live call is taken to have had one when Redis last failed
        here, so nothing is swept until `idle` after that. A per-call lock keeps two instances from
        sweeping the same call at once; the archive's uniqueness would absorb that anyway, but the
        lock spares the duplicate work and log noise.
        """
        now = self._now()
        if self._hot_failed_at is not None and self._hot_failed_at > now - idle:
            return 0
        async with self.stores("finding idle calls"):
            candidates = await self._hot.idle_calls(now - idle, limit)
        swept = 0
        for call, caller in candidates:
            lock = f"sweep:{call.platform}:{call.call_id}"
            async with self.stores("locking an idle call"):
                token = await self._hot.acquire(lock, int(lock_ttl.total_seconds() * 1000))
            if token is None:
                continue
            try:
                async with self.stores("ending an idle call"):
                    found = await self._hot.end_if_idle(
                        call, caller, idle_since=now - idle, ended_at=self._now(), reason="idle_timeout"
                    )
                    if found is None:
                        await self._hot.forget_live(call, caller)
                if isinstance(found, LiveCall):
                    log.warning("call %s had no event for %s: archiving it", call.call_id, idle)
                    await self._archive_frozen(found)
                    swept += 1
            finally:
                async with self.stores("unlocking an idle call"):
                    await self._hot.release(lock, token)
        return swept

    async def pending_archives(self) -> int | None:
        """How many ended calls wait for the archive; None when Redis cannot say."""
        return await _count_or_none(self._hot.pending_count)

    async def quarantined_archives(self) -> int | None:
        """How many calls Postgres refused are quarantined; None when Redis cannot say."""
        return await _count_or_none(self._hot.quarantine_count)

    async def ready(self) -> dict[str, bool]:
        """Whether each store answers; Postgres within the readiness deadline, both at once."""

        async def answers(probe: Callable[[], Awaitable[bool]]) -> bool:
            try:
                return await probe()
            except _ANY_STORE_ERROR:  # OSError: a deadline passed, too
                return False

        redis, postgres = await asyncio.gather(
            answers(self._hot.ping), answers(lambda: self._archive.ping(self._ready_timeout_s))
        )
        return {"redis": redis, "postgres": postgres}

    # -- quarantine: what the operator's `callmemory quarantine` commands do -----------------------
    async def quarantined(self) -> list[tuple[QuarantinedCall, LiveCall | None]]:
        """The quarantined calls, each with its frozen state and transcript (None if it was lost)."""
        async with self.stores("reading the quarantine"):
            entries = await self._hot.quarantined()
            # begin_end on a frozen call only reads it: its end time and reason are set already.
            return [(entry, await self._hot.begin_end(entry.call, entry.caller)) for entry in entries]

    async def retry_quarantined(self, entry: QuarantinedCall) -> ArchiveAttempt | None:
        """Try a quarantined call again now; refused again, it gets its full number of tries anew
        from the flusher. None when its state is gone."""
        async with self.stores("releasing a quarantined call"):
            await self._hot.release_quarantined(entry.call, entry.caller)
            live = await self._hot.begin_end(entry.call, entry.caller)
        if live is None:
            return None
        return await self._try_archive(live)


async def _count_or_none(count: Callable[[], Awaitable[int]]) -> int | None:
    try:
        return await count()
    except HOT_STORE_ERRORS:
        return None
