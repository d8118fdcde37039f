"""The core's entry point for call events: what the bot does on ringing, speech and hangup."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from callmemory.conversation.greeting import Greetings
from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.responder import Responder
from callmemory.errors import CallAlreadyEnded, InvalidEvent
from callmemory.events import (
    CallEnded,
    CallerSpoke,
    CallEvent,
    CallRef,
    CallStarted,
    EndOutcome,
    Reply,
    Role,
)
from callmemory.memory.keys import CallerId
from callmemory.memory.service import MemoryService
from callmemory.memory.types import CallerMemory

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


class CallHandler:
    def __init__(
        self,
        memory: MemoryService,
        responder: Responder,
        greetings: Greetings,
        *,
        prompt: PromptBuilder,
        max_speech_chars: int,
    ) -> None:
        self._memory = memory
        self._responder = responder
        self._greetings = greetings
        self._prompt = prompt
        self._max_speech_chars = max_speech_chars

    async def handle(self, event: CallEvent) -> Reply | EndOutcome:
        match event:
            case CallStarted():
                return await self._ringing(event)
            case CallerSpoke():
                return await self._speech(event)
            case CallEnded():
                return await self._memory.end_call(event.call, event.caller_number, event.reason)

    async def open_call(self, event: CallStarted, greetings: Greetings | None = None) -> Opened:
        """Start (or re-start) a call and greet; `greetings` overrides the default ones (per bot)."""
        begun = await self._memory.begin_call(event.call, event.caller_number, event.bot_number)
        greeting = (greetings or self._greetings).for_caller(begun.memory)
        if begun.is_new:
            # The greeting is part of the transcript: the caller heard it. A repeated ringing is not.
            caller = begun.memory.caller
            await self._memory.record_turn(event.call, caller, Role.BOT, greeting)
        return Opened(greeting=greeting, memory=begun.memory, is_new=begun.is_new)

    async def _ringing(self, event: CallStarted) -> Reply:
        return Reply(say=(await self.open_call(event)).greeting)

    async def _speech(self, event: CallerSpoke) -> Reply:
        text = self._speech_text(event.text)
        caller = await self._memory.locate(event.call, event.caller_number)
        return await self.respond(await self._hear(event.call, caller, text, None))

    async def hear(self, call: CallRef, text: str, *, at: datetime | None = None) -> Heard:
        """Record what the caller said on a live call known by id alone (platforms without numbers)."""
        text = self._speech_text(text)
        return await self._hear(call, await self._memory.caller_of(call), text, at)

    async def respond(self, heard: Heard) -> Reply:
        """Ask the LLM for the answer to a heard turn and record it."""
        call = heard.call
        prompt = self._prompt.build(heard.memory, call.call_id)
        answer = await self._responder.answer(prompt.messages)
        try:
            await self._memory.record_turn(
                call, heard.caller, Role.BOT, answer.text, fallback=answer.fallback
            )
        except CallAlreadyEnded:
            # The caller hung up while the LLM was thinking: nobody heard this answer, so it is not kept.
            log.info("call %s ended before its answer was ready; answer dropped", call.call_id)
        return Reply(say=answer.text)

    async def _hear(self, call: CallRef, caller: CallerId, text: str, at: datetime | None) -> Heard:
        # Recorded before the LLM is asked, so what the caller said survives an LLM failure.
        _, memory = await self._memory.record_turn(call, caller, Role.CALLER, text, at=at)
        return Heard(call=call, caller=caller, memory=memory)

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
