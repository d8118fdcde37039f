"""A caller's memory during calls: who the caller is, what they remember, and a live call's turns.

The first of the memory service's three layers (live.py, archiving.py, service.py), each a class that
extends the one before: this one holds the stores and everything a live call does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from callmemory.core.errors import (
    CallerMismatch,
    CallNotStarted,
    InvalidEvent,
    InvalidPhoneNumber,
    LiveStateLost,
    StoreUnavailable,
)
from callmemory.core.events import CallRef, Role, Verification
from callmemory.core.identity import CallerHasher, CallerId, NumberPolicy
from callmemory.core.trust import DisclosurePolicy, Trust
from callmemory.core.withheld import is_withheld, withheld_identity
from callmemory.memory.archive import Archive
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.client import HOT_STORE_ERRORS, describe_store_error
from callmemory.memory.hot.store import HotStore
from callmemory.memory.search.postgres import NoSearch, Searcher
from callmemory.memory.types import (
    CallerMemory,
    DuplicateEvent,
    EventAnswer,
    Found,
    Turn,
    utcnow,
)
from callmemory.observability.context import bind_caller
from callmemory.observability.logs import describe_error
from callmemory.observability.metrics import Metrics

log = logging.getLogger(__name__)

# The event key under which a call's greeting is kept when it is picked outside Redis (see greet_call);
# platform event keys are prefixed (`id:`, `seq:`, ...), so none can be this.
_GREETING_EVENT = "greeting"

# How many live calls kept apart a process remembers (see record_turn): a call lasts minutes.
_APART_CALLS = 10_000


@dataclass(frozen=True, slots=True)
class CallBegun:
    memory: CallerMemory
    is_new: bool  # False for a repeated ringing of the same call


@dataclass(frozen=True, slots=True)
class CallGreeted(CallBegun):
    greeting: str  # what the caller hears: for a repeated ringing, what they were greeted with first


class LiveMemory:
    """Identity, reading a caller's memory, and recording a live call (see the module's docstring)."""

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
        # Live calls this process saw kept apart (core/trust.py), oldest first: a hint that spares their
        # turns the archive search, refreshed by every turn's own answer from Redis.
        self._apart: dict[CallRef, None] = {}

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
                short(caller),
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
                    short(caller),
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
        self._note_apart(call, apart=started.memory is not None and started.memory.apart)
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
        # Started first, so the search's round trip overlaps Redis' instead of following it; not for a
        # call this process saw kept apart, whose results would be thrown away.
        search = recall and self._recall and call not in self._apart
        found = asyncio.ensure_future(self._search.find(caller, text)) if search else None
        try:
            async with self.stores("recording a turn"):
                turn, memory = await self._hot.append_turn(
                    call, caller, role, text, at or self._now(), fallback=fallback, event=event, spoken=spoken
                )
        except BaseException:
            if found is not None:
                found.cancel()
            raise
        self._note_apart(call, apart=memory.apart)
        if found is None:
            return turn, memory
        if memory.apart:
            # Searched before the call was known to be kept apart: what it finds is not this call's.
            found.cancel()
            return turn, memory
        return turn, replace(memory, found=await found)

    def _note_apart(self, call: CallRef, *, apart: bool) -> None:
        if not apart:
            self._apart.pop(call, None)
            return
        self._apart[call] = None
        if len(self._apart) > _APART_CALLS:
            del self._apart[next(iter(self._apart))]

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
        self._note_apart(call, apart=False)
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


def short(caller: CallerId) -> str:
    """A caller as log lines name them: a prefix of the hash, never a number."""
    return caller.caller_hash[:12]
