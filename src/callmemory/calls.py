"""The core's entry point for call events: what the bot does on ringing, speech and hangup."""

from __future__ import annotations

import logging

from callmemory.conversation.greeting import Greetings
from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.responder import Responder
from callmemory.errors import CallAlreadyEnded, InvalidEvent
from callmemory.events import CallEnded, CallerSpoke, CallEvent, CallStarted, EndOutcome, Reply, Role
from callmemory.memory.service import MemoryService

log = logging.getLogger(__name__)


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

    async def _ringing(self, event: CallStarted) -> Reply:
        begun = await self._memory.begin_call(event.call, event.caller_number, event.bot_number)
        greeting = self._greetings.for_caller(begun.memory)
        if begun.is_new:
            # The greeting is part of the transcript: the caller heard it. A repeated ringing is not.
            caller = begun.memory.caller
            await self._memory.record_turn(event.call, caller, Role.BOT, greeting)
        return Reply(say=greeting)

    async def _speech(self, event: CallerSpoke) -> Reply:
        text = " ".join(event.text.split())
        if not text:
            raise InvalidEvent("`speech` is empty", field="speech")
        if len(text) > self._max_speech_chars:
            raise InvalidEvent(
                f"`speech` is {len(text)} characters; at most {self._max_speech_chars} are accepted",
                field="speech",
            )
        caller = await self._memory.locate(event.call, event.caller_number)
        # Recorded before the LLM is asked, so what the caller said survives an LLM failure.
        _, memory = await self._memory.record_turn(event.call, caller, Role.CALLER, text)
        prompt = self._prompt.build(memory, event.call.call_id)
        answer = await self._responder.answer(prompt.messages)
        try:
            await self._memory.record_turn(
                event.call, caller, Role.BOT, answer.text, fallback=answer.fallback
            )
        except CallAlreadyEnded:
            # The caller hung up while the LLM was thinking: nobody heard this answer, so it is not kept.
            log.info("call %s ended before its answer was ready; answer dropped", event.call.call_id)
        return Reply(say=answer.text)
