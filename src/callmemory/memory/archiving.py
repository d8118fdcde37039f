"""A finished call archived: frozen in Redis, written to Postgres, or kept for the flusher."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from callmemory.core.errors import (
    CallAlreadyEnded,
    CallNotStarted,
    StoreUnavailable,
)
from callmemory.core.events import CallRef, EndOutcome, Role
from callmemory.core.identity import CallerId
from callmemory.core.withheld import is_withheld
from callmemory.memory.live import LiveMemory, short
from callmemory.memory.refusals import Refusal, refusal_reason
from callmemory.memory.topic import topic_of
from callmemory.memory.types import (
    CallRecord,
    LiveCall,
)
from callmemory.observability.logs import describe_error

log = logging.getLogger(__name__)


class ArchiveAttempt(StrEnum):
    """What one try to archive a frozen call came to."""

    STORED = "archived"
    DUPLICATE = "already_archived"
    UNREACHABLE = "unreachable"  # Postgres is down or too slow: the call waits in Redis for the flusher
    REFUSED = "refused"  # Postgres refused the call's data: retried, or quarantined after too many


_END_OUTCOMES = {
    ArchiveAttempt.STORED: EndOutcome.ARCHIVED,
    ArchiveAttempt.DUPLICATE: EndOutcome.ALREADY_ARCHIVED,
    ArchiveAttempt.UNREACHABLE: EndOutcome.PENDING,
    ArchiveAttempt.REFUSED: EndOutcome.PENDING,  # kept in Redis all the same
}


class ArchivingMemory(LiveMemory):
    """The end of a call: its archiving, and what reaches it after (late turns, summaries)."""

    async def add_late_turn(self, call: CallRef, role: Role, text: str, at: datetime | None) -> None:
        """A turn the platform reported after the call was archived: it joins the archived call.

        Raises StoreUnavailable while the call is still being archived, so the platform retries.
        """
        try:
            added = await self._archive.add_late_turn(call, role, text, at or self._now())
            # A call kept apart from the caller's memory stays apart: no topic, nothing to refresh.
            joins = added is not None and (added[2] or not self.disclosure.verified_only(added[0].bot_number))
            if added is not None and joins and (topic := topic_of(added[1])):
                await self._archive.set_topic(call, topic)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable; retry the event") from exc
        if added is None:
            raise StoreUnavailable(f"call {call.call_id!r} is not archived yet; retry the event")
        if joins:
            # The hot copy lacks the late turn and would hide it: the next read rehydrates from the archive.
            async with self.stores("refreshing the caller's memory"):
                await self._hot.forget_caller(added[0])
        log.info("added a late %s turn to archived call %s", role, call.call_id)

    async def store_summary(self, call: CallRef, summary: str) -> bool:
        """Keep a summary of the call: with the live call, or on its archived row. False: unknown call."""
        caller: CallerId | None
        try:
            caller = await self.caller_of(call)
        except (CallAlreadyEnded, CallNotStarted):
            caller = None  # archived (or never seen): only the archive can take it
        if caller is not None:
            try:
                async with self.stores("storing the call's summary"):
                    await self._hot.set_call_summary(call, caller, summary)
                return True
            except (CallAlreadyEnded, CallNotStarted):
                pass  # being archived right now, or expired: the archive, else a retry
        try:
            stored = await self._archive.set_summary(call, summary)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable; retry the event") from exc
        if not stored and caller is not None:
            raise StoreUnavailable(f"call {call.call_id!r} is being archived; retry the event")
        return stored

    async def end_call(self, call: CallRef, caller_number: str | None, reason: str | None) -> EndOutcome:
        """Archive the finished call in one transaction, then drop its live state. Idempotent.

        Without a caller number (a platform that did not send one) the call is found by its id alone.
        """
        try:
            caller = await (self.locate(call, caller_number) if caller_number else self.caller_of(call))
        except CallAlreadyEnded:
            return EndOutcome.ALREADY_ARCHIVED
        except CallNotStarted:
            return EndOutcome.UNKNOWN_CALL
        async with self.stores("reading the finished call"):
            try:
                live = await self._hot.begin_end(
                    call, caller, ended_at=self._now(), reason=reason, check_ref=True
                )
            except CallAlreadyEnded:
                return EndOutcome.ALREADY_ARCHIVED
            except CallNotStarted:
                return EndOutcome.UNKNOWN_CALL
        if live is None:
            return EndOutcome.UNKNOWN_CALL
        number = (
            self._numbers.normalise(caller_number, field="from")
            if self._keep_numbers and caller_number and not is_withheld(caller_number)
            else None
        )
        return await self._archive_frozen(live, caller_number=number)

    async def _archive_frozen(self, live: LiveCall, *, caller_number: str | None = None) -> EndOutcome:
        return _END_OUTCOMES[await self._try_archive(live, caller_number=caller_number)]

    async def _try_archive(
        self, live: LiveCall, *, caller_number: str | None = None, retry_at: datetime | None = None
    ) -> ArchiveAttempt:
        """Archive a frozen call and clear its live state; if Postgres fails, leave it to the flusher."""
        call, caller = live.call, live.caller
        record = CallRecord(
            call=call,
            caller=caller,
            started_at=live.started_at,
            ended_at=live.ended_at or self._now(),
            end_reason=live.end_reason,
            # Numbered by place, not by arrival: a turn said earlier may have arrived later.
            turns=tuple(replace(turn, seq=n) for n, turn in enumerate(live.transcript, start=1)),
            topic=topic_of(live.transcript),
            caller_number=caller_number,
            summary=live.summary,
            trust=live.trust,
            apart=live.apart,
        )
        try:
            with self._metrics.timed(self._metrics.archive_write_seconds, outcome="failed") as labels:
                stored = await self._archive.archive_call(record)
                labels["outcome"] = "stored" if stored else "duplicate"
        except (SQLAlchemyError, OSError) as exc:
            if (refusal := refusal_reason(exc)) is not None:
                await self._set_aside(live, refusal, retry_at or self._now())
                return ArchiveAttempt.REFUSED
            # The call stays in Redis, frozen, and is scheduled for the flusher; nothing is lost.
            log.error(
                "archiving call %s failed, kept in Redis for the flusher: %s",
                call.call_id,
                describe_error(exc),
            )
            async with self.stores("scheduling the call for archiving"):
                await self._hot.mark_pending(call, caller, retry_at or self._now())
            return ArchiveAttempt.UNREACHABLE
        except asyncio.CancelledError:
            # The request was cancelled (a shutdown out of patience with a slow Postgres): the frozen call
            # is handed to the flusher, as in an outage, rather than left for the idle-call sweeper.
            async with self.stores("scheduling the call for archiving"):
                await self._hot.mark_pending(call, caller, retry_at or self._now())
            raise
        async with self.stores("clearing the archived call"):
            # A call kept apart leaves the caller's hot memory as it was: no count, no topic.
            await self._hot.finish_call(
                call, caller, counted=stored and not live.apart, topic=None if live.apart else record.topic
            )
        if stored and self._on_archived is not None:
            self._on_archived()
        log.info(
            "archived call %s of caller %s: %d turns (%s)",
            call.call_id,
            short(caller),
            len(record.turns),
            "new" if stored else "already archived",
        )
        return ArchiveAttempt.STORED if stored else ArchiveAttempt.DUPLICATE

    async def _set_aside(self, live: LiveCall, refusal: Refusal, at: datetime) -> None:
        """Postgres refused the call for its own data: retry it later, and after too many refusals
        quarantine it, so that it stops costing every flusher pass a try."""
        self._metrics.archive_refusals.inc()
        async with self.stores("setting a refused call aside"):
            refusals = await self._hot.note_refusal(
                live.call, live.caller, str(refusal), at=at, quarantine_after=self._refusals_max
            )
        # The kind only: Postgres' message may quote what the caller said.
        if refusals >= self._refusals_max:
            log.error(
                "Postgres refused call %s %d times (%s): quarantined, kept in Redis; see "
                "`callmemory quarantine list`",
                live.call.call_id,
                refusals,
                refusal.kind,
            )
        else:
            log.warning(
                "Postgres refused call %s (%s), refusal %d of %d before quarantine",
                live.call.call_id,
                refusal.kind,
                refusals,
                self._refusals_max,
            )
