"""The memory rules: who a caller is, what they remember, recording turns, archiving a finished call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from callmemory.core.errors import (
    CallAlreadyEnded,
    CallerMismatch,
    CallNotStarted,
    InvalidEvent,
    InvalidPhoneNumber,
    LiveStateLost,
    StoreUnavailable,
)
from callmemory.core.events import CallRef, EndOutcome, Role, Verification
from callmemory.core.identity import CallerHasher, CallerId, NumberPolicy
from callmemory.core.trust import DisclosurePolicy, Trust
from callmemory.core.withheld import is_withheld, withheld_identity
from callmemory.memory.archive import Archive
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.client import HOT_STORE_ERRORS, describe_store_error
from callmemory.memory.hot.store import HotStore, QuarantinedCall
from callmemory.memory.refusals import Refusal, refusal_reason
from callmemory.memory.search.postgres import NoSearch, Searcher
from callmemory.memory.topic import topic_of
from callmemory.memory.types import (
    CallerMemory,
    CallRecord,
    DuplicateEvent,
    EventAnswer,
    Found,
    LiveCall,
    Turn,
    utcnow,
)
from callmemory.observability.context import bind_caller
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics

log = logging.getLogger(__name__)

_ANY_STORE_ERROR: tuple[type[Exception], ...] = (*HOT_STORE_ERRORS, SQLAlchemyError)

# The event key under which a call's greeting is kept when it is picked outside Redis (see greet_call);
# platform event keys are prefixed (`id:`, `seq:`, ...), so none can be this.
_GREETING_EVENT = "greeting"


@dataclass(frozen=True, slots=True)
class CallBegun:
    memory: CallerMemory
    is_new: bool  # False for a repeated ringing of the same call


@dataclass(frozen=True, slots=True)
class CallGreeted(CallBegun):
    greeting: str  # what the caller hears: for a repeated ringing, what they were greeted with first


@dataclass(frozen=True, slots=True)
class FlushResult:
    archived: int = 0
    failed: int = 0  # still waiting for the archive, which is unreachable
    refused: int = 0  # refused by Postgres for their own data: retried later, or quarantined


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


class MemoryService:
    def __init__(
        self,
        hot: HotStore,
        archive: Archive,
        hasher: CallerHasher,
        numbers: NumberPolicy,
        *,
        recent_turns: int,
        default_bot_number: str | None = None,
        keep_caller_numbers: bool = False,
        clock: Callable[[], datetime] = utcnow,
        call_summaries: int = 10,
        on_archived: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
        refusals_max: int = 3,
        ready_timeout_s: float = 0.5,
        search: Searcher | None = None,
        recall: bool = True,
        disclosure: DisclosurePolicy | None = None,
    ) -> None:
        self._hot = hot
        self._archive = archive
        self._hasher = hasher
        self._numbers = numbers
        self._recent_turns = recent_turns
        self._default_bot = default_bot_number
        self._keep_numbers = keep_caller_numbers
        self._now = clock
        self._call_summaries = call_summaries
        self._on_archived = on_archived  # wakes the summary worker
        self._metrics = metrics or Metrics()
        self._refusals_max = refusals_max
        self._ready_timeout_s = ready_timeout_s
        self._hot_failed_at: datetime | None = None  # when Redis last failed here: see stores()
        self._search: Searcher = search or NoSearch()
        self._recall = recall  # whether caller turns are searched for (the API's search works anyway)
        self.disclosure = disclosure or DisclosurePolicy()

    # -- identity --------------------------------------------------------------------------------
    def identify(
        self, caller_number: str, bot_number: str | None, call: CallRef | None = None
    ) -> tuple[CallerId, str | None]:
        """The caller's id and normalised number (None for a withheld one, see _caller_part); the bot
        defaults to the configured number."""
        bot_raw = bot_number or self._default_bot
        if not bot_raw:
            raise InvalidEvent(
                "`to` (the bot's number) is missing and no default bot number is configured "
                "(CALLMEMORY_DEFAULT_BOT_NUMBER)",
                field="to",
            )
        part = self._caller_part(caller_number, call)
        bot_e164 = self._numbers.normalise(bot_raw, field="to")
        caller = self._hasher.caller_id(bot_e164, part)
        bind_caller(caller.caller_hash)  # the log lines that follow name the caller by hash prefix
        return caller, None if is_withheld(caller_number) else part

    def _caller_part(self, caller_number: str, call: CallRef | None) -> str:
        """What names the caller under a bot: their number in E.164; for a withheld caller ID (a word
        such as `anonymous`, or the digits it spells), the call alone (core/withheld.py), on every
        platform: taken as a number, all of a bot's withheld callers would share one memory."""
        if not is_withheld(caller_number):
            return self._numbers.normalise(caller_number, field="from")
        if call is None:
            raise InvalidPhoneNumber("`from` is withheld: no memory can be kept for it", field="from")
        return withheld_identity(call)

    def address(self, bot_number: str, caller_number: str) -> CallerId:
        """A caller as the integrator API names them, hashed exactly as the webhook hashes them."""
        bot_e164 = self._numbers.normalise(bot_number, field="bot_number")
        caller_e164 = self._numbers.normalise(caller_number, field="caller_number")
        return self._hasher.caller_id(bot_e164, caller_e164)

    def bot_number(self, bot_number: str) -> str:
        """A bot's number in E.164, as callers of it are stored."""
        return self._numbers.normalise(bot_number, field="bot_number")

    # -- reading ---------------------------------------------------------------------------------
    async def memory_for(self, caller: CallerId) -> CallerMemory:
        """Hot memory, rehydrated from the archive when Redis has none."""
        with self._metrics.timed(self._metrics.memory_read_seconds, source="hot"):
            async with self.stores("reading caller memory"):
                hot = await self._hot.read_caller(caller)
        return hot if hot is not None else await self._rehydrate(caller)

    async def _rehydrate(self, caller: CallerId) -> CallerMemory:
        with self._metrics.timed(self._metrics.memory_read_seconds, source="rehydrate"):
            return await self._load_into_hot(caller)

    async def _load_into_hot(self, caller: CallerId) -> CallerMemory:
        try:
            cold = await self._archive.load_caller(
                caller,
                self._recent_turns,
                self._call_summaries,
                verified_only=self.disclosure.verified_only(caller.bot_number),
            )
        except (SQLAlchemyError, OSError) as exc:
            # Better a call without memory than no call. What this call adds to Redis is marked partial,
            # or it would hide the archived memory until it expired; the next read completes it.
            log.warning(
                "archive unavailable, answering caller %s without memory: %s",
                _short(caller),
                describe_error(exc),
            )
            async with self.stores("marking the caller's memory partial"):
                await self._hot.mark_partial(caller)
            return CallerMemory(caller=caller)
        memory = cold or CallerMemory(caller=caller)
        async with self.stores("rehydrating caller memory"):
            if await self._hot.hydrate(memory):
                self._metrics.rehydrations.inc()
                log.info(
                    "rehydrated caller %s: %d turns, %d calls",
                    _short(caller),
                    len(memory.recent),
                    memory.call_count,
                )
                return memory
            # Another request hydrated first (and may have appended since): its copy is the truth.
            return await self._hot.read_caller(caller) or memory

    # -- a live call -----------------------------------------------------------------------------
    async def begin_call(
        self, call: CallRef, caller_number: str, bot_number: str | None, trust: Trust = Trust.UNVERIFIED
    ) -> CallBegun:
        """Open a call without greeting the caller (a call recorded through the integrator API, or one
        reopened at a turn after its state was lost)."""
        begun, _ = await self._start(call, caller_number, bot_number, None, trust)
        return begun

    async def greet_call(
        self,
        call: CallRef,
        caller_number: str,
        bot_number: str | None,
        greetings: Greetings,
        trust: Trust = Trust.UNVERIFIED,
    ) -> CallGreeted:
        """Open a call and greet the caller from their memory; the greeting joins the transcript.

        A returning caller with hot memory is greeted in the same round trip that opens the call.
        """
        begun, greeting = await self._start(call, caller_number, bot_number, greetings, trust)
        if greeting is None:
            # Not greeted by Redis: the memory had to come from the archive first. Copies of the ringing
            # may each get here, and a later copy may read memory that already holds an earlier copy's
            # greeting (and pick another one): the greeting is recorded as the answer of the call's
            # greeting event, which only the first writer sets, and every copy says what it holds.
            greeting = await self.greeting_for(begun.memory, greetings)
            try:
                await self.record_reply(call, begun.memory.caller, greeting, event=_GREETING_EVENT)
            except DuplicateEvent as recorded:
                greeting = recorded.answer.text if recorded.answer else greeting
            except CallNotStarted as lost:
                raise LiveStateLost(call.call_id) from lost  # the state this ringing opened is gone again
        return CallGreeted(memory=begun.memory, is_new=begun.is_new, greeting=greeting)

    async def greeting_for(self, memory: CallerMemory, greetings: Greetings) -> str:
        """What a caller with `memory` is greeted with: the rule lives in Redis (see memory/greeting.py)."""
        async with self.stores("picking the greeting"):
            return await self._hot.greeting_for(memory, greetings)

    async def _start(
        self,
        call: CallRef,
        caller_number: str,
        bot_number: str | None,
        greetings: Greetings | None,
        trust: Trust,
    ) -> tuple[CallBegun, str | None]:
        caller, _ = self.identify(caller_number, bot_number, call)
        apart = self.disclosure.keeps_apart(caller.bot_number, trust)
        with self._metrics.timed(self._metrics.memory_read_seconds, source="hot"):
            async with self.stores("starting the call"):
                started = await self._hot.start_call(
                    call, caller, self._now(), greetings, trust=trust, apart=apart
                )
        if started.is_new:
            self._metrics.count_call_trust(trust, apart=apart)
        # A call kept apart has its (empty) memory from the script: the archive holds nothing for it.
        memory = started.memory if started.memory is not None else await self._rehydrate(caller)
        return CallBegun(memory=memory, is_new=started.is_new), started.greeting

    @property
    def has_default_bot(self) -> bool:
        return bool(self._default_bot)

    async def locate(self, call: CallRef, caller_number: str) -> CallerId:
        """The caller of a live call, checked against the number the event claims.

        A call this process has seen live is not looked up again: record_turn and end_call check
        that it still is, in the round trip they make anyway.
        """
        caller = self._hot.known_caller(call)
        if caller is None:
            async with self.stores("locating the call"):
                caller = await self._hot.locate_call(call)
        bind_caller(caller.caller_hash)
        if self._hasher.caller_id(caller.bot_number, self._caller_part(caller_number, call)) != caller:
            raise CallerMismatch(f"`from` does not match the caller of call {call.call_id!r}", field="from")
        return caller

    async def caller_of(self, call: CallRef) -> CallerId:
        """The caller of a live call, for platforms whose events name the call but not the number."""
        async with self.stores("locating the call"):
            caller = await self._hot.locate_call(call)
        bind_caller(caller.caller_hash)
        return caller

    async def record_turn(
        self,
        call: CallRef,
        caller: CallerId,
        role: Role,
        text: str,
        *,
        fallback: bool = False,
        at: datetime | None = None,
        event: str | None = None,
        spoken: str | None = None,
        recall: bool = False,
    ) -> tuple[Turn, CallerMemory]:
        """Append a turn of a live call; with `event`, at most once per platform event (else
        DuplicateEvent). `at` is when it was spoken if the platform says, else now. `spoken` places it
        among the call's turns by where it was said, for platforms that deliver out of order.

        With `recall` (a caller's turn the bot is about to answer), the caller's archive is searched
        for what they said while Redis records it, and the memory returned carries what was found.
        """
        # Started first, so the search's round trip overlaps Redis' instead of following it.
        found = asyncio.ensure_future(self._search.find(caller, text)) if recall and self._recall else None
        try:
            async with self.stores("recording a turn"):
                turn, memory = await self._hot.append_turn(
                    call, caller, role, text, at or self._now(), fallback=fallback, event=event, spoken=spoken
                )
        except BaseException:
            if found is not None:
                found.cancel()
            raise
        if found is None:
            return turn, memory
        if memory.apart:
            # Searched before the call was known to be kept apart: what it finds is not this call's.
            found.cancel()
            return turn, memory
        return turn, replace(memory, found=await found)

    async def memory_during(self, call: CallRef, caller: CallerId) -> CallerMemory:
        """The memory a live call may read now: the caller's, or for a call kept apart (core/trust.py)
        its own latest turns alone."""
        async with self.stores("reading the call's memory"):
            memory = await self._hot.read_for_call(call, caller)
        return memory if memory is not None else await self.memory_for(caller)

    async def verify_call(self, call: CallRef, caller: CallerId) -> Verification:
        """The bot checked the caller: from now on the call is verified, and its turns, those said
        before included, are the caller's (scripts/verify.lua). A call kept apart joins the caller's
        memory, which is made complete in Redis first (rehydrated if it had gone cold)."""
        await self.memory_for(caller)
        async with self.stores("verifying the call"):
            verified = await self._hot.verify(call, caller, self._now())
        if not verified:
            return Verification.ALREADY_VERIFIED
        self._metrics.calls_verified.inc()
        log.info("call %s: caller verified during the call", call.call_id)
        return Verification.VERIFIED

    async def recall(self, caller: CallerId, said: str) -> tuple[Found, ...]:
        """What the prompt's search finds for `said`; () when it is off or failed (see record_turn)."""
        return await self._search.find(caller, said) if self._recall else ()

    async def search(self, caller: CallerId, query: str, limit: int) -> tuple[Found, ...]:
        """The caller's archive searched for `query`, for integrators; StoreUnavailable when Postgres
        cannot answer in time."""
        try:
            return await self._search.search(caller, query, limit)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable("the archive is unavailable; retry the search") from exc

    async def record_reply(
        self, call: CallRef, caller: CallerId, text: str, *, fallback: bool = False, event: str | None = None
    ) -> Turn:
        """Append what the bot said; like record_turn, but the caller's memory is not read back."""
        async with self.stores("recording a reply"):
            return await self._hot.append_reply(
                call, caller, text, self._now(), fallback=fallback, event=event
            )

    async def answer_for(self, call: CallRef, caller: CallerId, event: str) -> EventAnswer | None:
        """The answer already given to a platform event, if any."""
        async with self.stores("reading an event's answer"):
            return await self._hot.event_answer(call, caller, event)

    async def event_seen(self, call: CallRef, caller: CallerId, event: str) -> EventAnswer | bool:
        """A platform event's stored answer; else whether the event was recorded at all."""
        async with self.stores("reading an event's answer"):
            return await self._hot.event_seen(call, caller, event)

    async def ended_caller(self, call: CallRef) -> CallerId | None:
        async with self.stores("locating the ended call"):
            return await self._hot.ended_caller(call)

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
            _short(caller),
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

    @asynccontextmanager
    async def stores(self, doing: str) -> AsyncIterator[None]:
        """Turn a Redis failure into StoreUnavailable (503) naming what was being done, and note when
        Redis last failed (see sweep_idle). Platforms that keep state of their own in Redis use it too,
        so a refused attempt anywhere keeps the sweeper's hands off live calls."""
        try:
            yield
        except HOT_STORE_ERRORS as exc:
            self._hot_failed_at = self._now()
            log.error("redis failed while %s: %s", doing, describe_store_error(exc))
            raise StoreUnavailable(f"hot memory is unavailable while {doing}") from exc

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


def _short(caller: CallerId) -> str:
    return caller.caller_hash[:12]
