"""The call handler: what the bot does on ringing, speech, a verification and hangup, for any platform."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.responder import Answer, Responder
from callmemory.core.errors import CallAlreadyEnded, CallNotStarted, InvalidEvent, LiveStateLost
from callmemory.core.events import (
    CallEnded,
    CallerSpoke,
    CallerVerified,
    CallEvent,
    CallRef,
    CallStarted,
    EndOutcome,
    Reply,
    Role,
    Verification,
)
from callmemory.core.identity import CallerId
from callmemory.memory.greeting import Greetings
from callmemory.memory.service import MemoryService
from callmemory.memory.types import CallerMemory, DuplicateEvent, EventAnswer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Opened:
    """A call's start: the greeting, and the caller's memory as it was before this call."""

    greeting: str
    memory: CallerMemory
    is_new: bool  # False for a repeated start of the same call


@dataclass(frozen=True, slots=True)
class Heard:
    """A caller's turn, recorded, with the memory that now includes it."""

    call: CallRef
    caller: CallerId
    memory: CallerMemory
    spoken: str | None = None  # where in the call it was said, for platforms that deliver out of order


class CallHandler:
    def __init__(
        self,
        memory: MemoryService,
        responder: Responder,
        greetings: Greetings,
        *,
        prompt: PromptBuilder,
        max_speech_chars: int,
        duplicate_wait_s: float = 5.0,
        fallback_line: str = "Sorry, could you say that again?",
    ) -> None:
        self._memory = memory
        self._responder = responder
        self._greetings = greetings
        self._prompt = prompt
        self._max_speech_chars = max_speech_chars
        self._duplicate_wait_s = duplicate_wait_s
        self._fallback_line = fallback_line

    async def handle(self, event: CallEvent) -> Reply | EndOutcome | Verification:
        match event:
            case CallStarted():
                return await self._ringing(event)
            case CallerSpoke():
                return await self._speech(event)
            case CallEnded():
                return await self._memory.end_call(event.call, event.caller_number, event.reason)
            case CallerVerified():
                caller = await self._memory.locate(event.call, event.caller_number)
                return await self._memory.verify_call(event.call, caller)

    async def open_call(self, event: CallStarted, greetings: Greetings | None = None) -> Opened:
        """Start (or re-start) a call and greet; `greetings` overrides the default ones (per bot)."""
        # A redelivered ringing hears what the first one did, not a greeting from memory it changed.
        # The greeting is part of the transcript: the caller heard it. A repeated ringing is not.
        begun = await self._memory.greet_call(
            event.call, event.caller_number, event.bot_number, greetings or self._greetings, event.trust
        )
        return Opened(greeting=begun.greeting, memory=begun.memory, is_new=begun.is_new)

    async def _ringing(self, event: CallStarted) -> Reply:
        return Reply(say=(await self.open_call(event)).greeting)

    async def _speech(self, event: CallerSpoke) -> Reply | EndOutcome:
        text = self._speech_text(event.text)
        caller: CallerId | None = None
        try:
            caller = await self._caller_of(event)
            heard = await self._hear_live(event, caller, text)
            return await self.respond(heard, event=event.event_key)
        except CallAlreadyEnded:
            # A redelivery after the hangup still gets its answer; a new event of an ended call does not.
            if (replayed := await self._replay(event, caller)) is None:
                raise
            return replayed
        except DuplicateEvent as seen:
            assert caller is not None  # only recording finds a duplicate, and it comes after the look-up
            earlier = seen.answer or await self._await_answer(event, caller)
            return Reply(say=earlier.text)

    async def _hear_live(self, event: CallerSpoke, caller: CallerId, text: str) -> Heard:
        try:
            return await self._hear(event.call, caller, text, None, event=event.event_key)
        except CallNotStarted as lost:
            # Its state went between the look-up and the turn: archived meanwhile (by a hangup or the
            # sweeper on another worker), or lost with Redis (see _caller_of).
            if await self._memory.ended_caller(event.call) is not None:
                raise CallAlreadyEnded(f"call {event.call.call_id!r} has already ended") from lost
            caller = await self._reopen(event, lost)
            try:
                return await self._hear(event.call, caller, text, None, event=event.event_key)
            except CallNotStarted as again:
                raise LiveStateLost(event.call.call_id) from again

    async def hear(
        self, call: CallRef, text: str, *, at: datetime | None = None, spoken: str | None = None
    ) -> Heard:
        """Record what the caller said on a live call known by id alone (platforms without numbers).

        `spoken` (a key that sorts in the order of speech) puts the turn where it was said, ahead of
        turns said after it that arrived first.
        """
        text = self._speech_text(text)
        return await self._hear(call, await self._memory.caller_of(call), text, at, spoken=spoken)

    async def respond_later(self, heard: Heard, still_wanted: Callable[[], Awaitable[bool]]) -> Reply | None:
        """The answer to `heard` for a platform that is told it after the event was acknowledged.

        None when nobody must hear it: `still_wanted()` said no once the LLM had answered (a turn said
        later has arrived and will be answered instead), or the call ended meanwhile. Either way nothing
        is recorded. The memory is read again first: turns said just before may have arrived since.
        """
        memory = replace(await self._memory.memory_during(heard.call, heard.caller), found=heard.memory.found)
        answer = await self._ask(heard.call, memory)
        if not await still_wanted():
            log.info("call %s: a later turn took the place of this answer; dropped", heard.call.call_id)
            return None
        try:
            await self._memory.record_reply(heard.call, heard.caller, answer.text, fallback=answer.fallback)
        except CallAlreadyEnded:
            log.info("call %s ended before its answer was ready; answer dropped", heard.call.call_id)
            return None
        return Reply(say=answer.text)

    async def _ask(self, call: CallRef, memory: CallerMemory) -> Answer:
        prompt = self._prompt.build(memory, call.call_id)
        return await self._responder.answer(prompt.messages)

    async def respond(self, heard: Heard, *, event: str | None = None) -> Reply:
        """Ask the LLM for the answer to a heard turn and record it (as `event`'s answer, if given)."""
        call = heard.call
        answer = await self._ask(call, heard.memory)
        try:
            await self._memory.record_reply(
                call, heard.caller, answer.text, fallback=answer.fallback, event=event
            )
        except DuplicateEvent as seen:
            # A redelivery gave up waiting for this answer and answered for us: keep one story.
            return Reply(say=seen.answer.text if seen.answer else answer.text)
        except CallAlreadyEnded:
            # The caller hung up while the LLM was thinking: nobody heard this answer, so it is not kept.
            log.info("call %s ended before its answer was ready; answer dropped", call.call_id)
        except CallNotStarted as lost:
            raise LiveStateLost(call.call_id) from lost
        return Reply(say=answer.text)

    async def _hear(
        self,
        call: CallRef,
        caller: CallerId,
        text: str,
        at: datetime | None,
        *,
        event: str | None = None,
        spoken: str | None = None,
    ) -> Heard:
        # Recorded before the LLM is asked, so what the caller said survives an LLM failure.
        _, memory = await self._memory.record_turn(
            call, caller, Role.CALLER, text, at=at, event=event, spoken=spoken, recall=True
        )
        return Heard(call=call, caller=caller, memory=memory, spoken=spoken)

    def _speech_text(self, raw: str) -> str:
        text = " ".join(raw.split())
        if not text:
            raise InvalidEvent("`speech` is empty", field="speech")
        if len(text) > self._max_speech_chars:
            raise InvalidEvent(
                f"`speech` is {len(text)} characters; at most {self._max_speech_chars} are accepted",
                field="speech",
            )
        return text

    async def _caller_of(self, event: CallerSpoke) -> CallerId:
        try:
            return await self._memory.locate(event.call, event.caller_number)
        except CallNotStarted as lost:
            return await self._reopen(event, lost)

    async def _reopen(self, event: CallerSpoke, lost: CallNotStarted) -> CallerId:
        """Open a call that has no live state at one of its turns, or raise `lost` when it cannot be."""
        if event.bot_number is None and not self._memory.has_default_bot:
            raise lost
        # No live state: the ringing never reached us, or Redis lost the call. The caller is on the line,
        # so the call is opened here (memory rehydrated from the archive) and goes on from this turn.
        log.warning("call %s has no live state; reopening it at this turn", event.call.call_id)
        begun = await self._memory.begin_call(event.call, event.caller_number, event.bot_number)
        return begun.memory.caller

    async def _replay(self, event: CallerSpoke, live_caller: CallerId | None) -> Reply | EndOutcome | None:
        """What a redelivery of an ended call's event gets: the stored answer; for a turn recorded
        whose answer never was (the call ended while the LLM was answering), an acknowledgement; for an
        event never seen, None (refused). The caller is the archived call's, or while the call is still
        being archived, the one it was located by."""
        if event.event_key is None:
            return None
        caller = await self._memory.ended_caller(event.call) or live_caller
        if caller is None:
            return None
        seen = await self._memory.event_seen(event.call, caller, event.event_key)
        if isinstance(seen, EventAnswer):
            return Reply(say=seen.text)
        return EndOutcome.ALREADY_ARCHIVED if seen else None

    async def _await_answer(self, event: CallerSpoke, caller: CallerId) -> EventAnswer:
        """The answer of a first delivery still waiting for the LLM, polled from Redis.

        Polled rather than awaited in-process because the first delivery may be on another worker or
        instance. If it never comes (that instance died), the fallback line becomes the event's answer.
        """
        assert event.event_key is not None
        deadline = time.monotonic() + self._duplicate_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            answer = await self._memory.answer_for(event.call, caller, event.event_key)
            if answer is not None:
                return answer
        log.warning("event %s of call %s got no answer in time", event.event_key, event.call.call_id)
        try:
            await self._memory.record_reply(
                event.call, caller, self._fallback_line, fallback=True, event=event.event_key
            )
        except DuplicateEvent as seen:
            if seen.answer is not None:
                return seen.answer
        except CallAlreadyEnded:
            pass
        except CallNotStarted as lost:
            raise LiveStateLost(event.call.call_id) from lost
        return EventAnswer(self._fallback_line, fallback=True)
