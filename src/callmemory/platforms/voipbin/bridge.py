"""Drives the core from VoIPBin: a fetch starts a call, events feed its turns, summary and hangup.

VoIPBin's events arrive out of order and more than once, and most name only part of what they refer
to (a transcript names its transcribe, an AI message its activeflow). This class dedups deliveries,
follows those links (holding an event until its link arrives) and only then hands the core what it
understands: a call, a caller, a turn. It never answers VoIPBin with actions except from `fetch`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from callmemory.calls.handler import CallHandler, Heard
from callmemory.conversation.brief import NEW_CALLER, memory_brief
from callmemory.conversation.prompt import PromptBuilder
from callmemory.core.errors import CallAlreadyEnded, CallNotStarted, InvalidEvent, InvalidPhoneNumber
from callmemory.core.events import CallRef, CallStarted, Role
from callmemory.core.trust import Trust
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.client import HOT_STORE_ERRORS
from callmemory.memory.service import MemoryService
from callmemory.memory.types import CallerMemory, DuplicateEvent
from callmemory.observability.context import bind_call
from callmemory.platforms.voipbin import wire as voipbin
from callmemory.platforms.voipbin.client import VoipbinApi
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.platforms.voipbin.state import LinkKind, VoipbinState
from callmemory.settings import Settings

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    HELD = "held"  # waits for the event it depends on
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Handled:
    outcome: Outcome
    to_answer: tuple[Heard, ...] = ()  # caller turns our LLM should answer, after the webhook is acknowledged


_HELD = Handled(Outcome.HELD)


def _ref(call_id: str) -> CallRef:
    return CallRef(voipbin.PLATFORM, call_id)


class VoipbinBridge:
    def __init__(
        self,
        calls: CallHandler,
        memory: MemoryService,
        state: VoipbinState,
        api: VoipbinApi | None,
        *,
        settings: Settings,
        prompt: PromptBuilder,
    ) -> None:
        self._calls = calls
        self._memory = memory
        self._state = state
        self._api = api
        self._settings = settings
        self._prompt = prompt

    # -- fetch -----------------------------------------------------------------------------------
    async def fetch(
        self, bot_number: str, caller_number: str, request: voipbin.FetchRequest
    ) -> list[dict[str, Any]]:
        """The actions for a call's `fetch`: greeting and memory, per the bot's mode."""
        call = _ref(request.reference_id) if request.reference_id else None
        try:
            caller, _ = self._memory.identify(caller_number, bot_number, call)
        except (InvalidPhoneNumber, InvalidEvent) as exc:
            # An unusual number (or none: the bot's may be blank; or withheld on a fetch that names no
            # call): anything but actions would stop the flow and leave the caller in silence, so they
            # are greeted as a stranger and nothing is recorded.
            log.warning("VoIPBin fetch for a caller without memory: %s", exc.message)
            bot = self._settings.voipbin_bot(bot_number)
            return voipbin.fetch_actions(
                bot, self._greetings(bot).new, NEW_CALLER, sleep_ms=self._settings.voipbin_sleep_ms
            )
        bot = self._settings.voipbin_bot(caller.bot_number)
        greetings = self._greetings(bot)
        if request.reference_id:
            call_id = request.reference_id
            opened = await self._calls.open_call(
                CallStarted(_ref(call_id), caller_number, bot_number), greetings
            )
            greeting, memory = opened.greeting, opened.memory
            async with self._memory.stores("linking the call"):
                await self._state.remember_call(call_id, bot=caller.bot_number, caller=caller.caller_hash)
                if request.activeflow_id:
                    await self._link("af", request.activeflow_id, call_id)
        else:
            # Without the call's id nothing can be recorded, but the caller still gets greeted.
            log.warning("VoIPBin fetch without reference_id: greeting caller without recording the call")
            # VoIPBin vouches for no caller: under a `verified` disclosure this one is a stranger.
            memory = (
                CallerMemory(caller=caller, apart=True)
                if self._memory.disclosure.keeps_apart(caller.bot_number, Trust.UNVERIFIED)
                else await self._memory.memory_for(caller)
            )
            greeting = await self._memory.greeting_for(memory, greetings)
        brief = memory_brief(self._prompt, memory, self._settings.voipbin_brief_chars)
        return voipbin.fetch_actions(bot, greeting, brief, sleep_ms=self._settings.voipbin_sleep_ms)

    def _greetings(self, bot: VoipbinBot) -> Greetings:
        return Greetings(
            new=bot.greeting_new or self._settings.greeting_new,
            returning=bot.greeting_returning or self._settings.greeting_returning,
        )

    # -- events ----------------------------------------------------------------------------------
    async def handle(self, event: voipbin.Event) -> Handled:
        """Apply one delivery exactly once. Raises (and forgets the delivery) if it could not be stored."""
        if event.data is None:
            return Handled(Outcome.IGNORED)
        async with self._memory.stores("recording the delivery"):
            if not await self._state.claim(event.key):
                log.info("VoIPBin redelivered %s; ignored", event.key)
                return Handled(Outcome.DUPLICATE)
        try:
            async with self._memory.stores(f"applying {event.type}"):
                handled = await self._apply(event)
        except BaseException:
            with contextlib.suppress(*HOT_STORE_ERRORS):
                await self._state.release(event.key)
            raise
        async with self._memory.stores("recording the delivery"):
            await self._state.confirm(event.key)
        return handled

    async def _apply(self, event: voipbin.Event) -> Handled:
        data = event.data
        raw = json.dumps(event.raw)
        match data:
            case voipbin.CallInfo():
                return await (self._hangup(data) if event.type == "call_hangup" else self._learn_call(data))
            case voipbin.TranscribeInfo() if data.call_id:
                return await self._link("tr", data.id, data.call_id)
            case voipbin.Transcript():
                call_id = await self._state.resolve_or_hold("tr", data.transcribe_id, raw)
                return await self._transcript(call_id, data) if call_id else _HELD
            case voipbin.AIMessage() if data.speaker and data.activeflow_id and data.content.strip():
                call_id = await self._state.resolve_or_hold("af", data.activeflow_id, raw)
                return await self._ai_message(call_id, data) if call_id else _HELD
            case voipbin.Summary() if data.content:
                return await self._summary(data, raw)
        return Handled(Outcome.IGNORED)

    async def _learn_call(self, info: voipbin.CallInfo) -> Handled:
        try:
            caller, _ = self._memory.identify(info.caller, info.bot, info.call)
        except (InvalidPhoneNumber, InvalidEvent) as exc:
            # An unusual number: nothing to remember about the caller, but the links still matter.
            log.info("VoIPBin call %s: %s", info.id, exc.message)
        else:
            fields = {"bot": caller.bot_number, "caller": caller.caller_hash}
            if info.activeflow_id:
                fields["flow"] = info.activeflow_id
            await self._state.remember_call(info.id, **fields)
        if info.activeflow_id:
            return await self._link("af", info.activeflow_id, info.id)
        return Handled(Outcome.APPLIED)

    async def _link(self, kind: LinkKind, link_id: str, call_id: str) -> Handled:
        """Learn which call `link_id` belongs to, and apply the events that waited for it."""
        held = await self._state.link(kind, link_id, call_id)
        # Caller turns released together were all said before the bot could answer: one answer, to
        # the latest-said of them (only it is handed back to be answered, and its prompt holds them all).
        answers: dict[CallRef, Heard] = {}
        for index, raw in enumerate(held):
            try:
                handled = await self._apply(voipbin.parse_envelope(json.loads(raw)))
            except BaseException:
                await self._state.hold_again(kind, link_id, held[index:])
                raise
            answers.update((heard.call, heard) for heard in handled.to_answer)
        return Handled(Outcome.APPLIED, tuple(answers.values()))

    async def _transcript(self, call_id: str, transcript: voipbin.Transcript) -> Handled:
        # Only the caller's side: in own-LLM mode we know what the bot said, and in managed-AI mode the
        # AI's messages carry both sides.
        if transcript.role is not Role.CALLER or not transcript.message.strip():
            return Handled(Outcome.IGNORED)
        call = _ref(call_id)
        bind_call(call_id)
        spoken = transcript.spoken
        try:
            if (await self._bot_of(call)).mode != "own_llm":
                return Handled(Outcome.IGNORED)
            # A transcript said before one already answered is recorded in its place, not answered
            # out of turn: the caller has moved on.
            latest = await self._state.note_spoken(call_id, spoken)
            heard = await self._calls.hear(call, transcript.message, at=transcript.tm_create, spoken=spoken)
        except (CallAlreadyEnded, CallNotStarted):
            return await self._late_turn(call, Role.CALLER, transcript.message, transcript.tm_create)
        return Handled(Outcome.APPLIED, (heard,) if latest else ())

    async def _bot_of(self, call: CallRef) -> VoipbinBot:
        bot = await self._state.call_field(call.call_id, "bot")
        return self._settings.voipbin_bot(bot or (await self._memory.caller_of(call)).bot_number)

    async def _ai_message(self, call_id: str, message: voipbin.AIMessage) -> Handled:
        assert message.speaker is not None
        return await self._ai_turn(
            _ref(call_id), message.id, message.speaker, message.content, message.tm_create
        )

    async def _ai_turn(
        self, call: CallRef, message_id: str, role: Role, text: str, at: datetime | None
    ) -> Handled:
        """A managed AI's message, recorded in the live call where it was said (its messages arrive in any
        order). Not kept aside until the hangup: the call's idle clock sees it, and should the hangup never
        come, the sweeper archives it with the call. The message id makes it one turn however often it
        is delivered; after the call's end it joins the archived call."""
        try:
            caller = await self._memory.caller_of(call)
            await self._memory.record_turn(
                call,
                caller,
                role,
                text,
                at=at,
                event=f"aimessage:{message_id}",
                spoken=voipbin.spoken_key(None, at),
            )
        except DuplicateEvent:
            return Handled(Outcome.DUPLICATE)
        except (CallAlreadyEnded, CallNotStarted):
            return await self._late_turn(call, role, text, at)
        return Handled(Outcome.APPLIED)

    async def _late_turn(self, call: CallRef, role: Role, text: str, at: datetime | None) -> Handled:
        """A turn of a call whose hangup has been handled: it joins the archived call."""
        try:
            await self._memory.caller_of(call)
        except CallNotStarted:
            log.warning("VoIPBin turn for call %s, which no fetch started; dropped", call.call_id)
            return Handled(Outcome.IGNORED)
        except CallAlreadyEnded:
            pass  # archived: the usual case
        # Still being archived (or its archiving failed and awaits the hangup's retry): this raises a
        # 503, and VoIPBin's retry of this event comes back later.
        await self._memory.add_late_turn(call, role, text, at)
        return Handled(Outcome.APPLIED)

    async def _summary(self, summary: voipbin.Summary, raw: str) -> Handled:
        if summary.reference_type == "call" and summary.reference_id:
            call_id: str | None = summary.reference_id
        elif summary.activeflow_id:
            call_id = await self._state.resolve_or_hold("af", summary.activeflow_id, raw)
            if call_id is None:
                return _HELD
        else:
            log.info("VoIPBin summary %s names no call or activeflow; ignored", summary.id)
            return Handled(Outcome.IGNORED)
        assert call_id is not None
        if not await self._memory.store_summary(_ref(call_id), summary.content):
            log.info("VoIPBin summary %s is for unknown call %s; ignored", summary.id, call_id)
            return Handled(Outcome.IGNORED)
        return Handled(Outcome.APPLIED)

    async def _hangup(self, info: voipbin.CallInfo) -> Handled:
        call = info.call
        bind_call(info.id)
        # The version before this one kept a managed AI's messages aside until the hangup: a call in
        # progress across the upgrade may still have some there (and, swept meanwhile, they join its
        # archive now).
        for turn in await self._state.seal(info.id):
            data = json.loads(turn)
            at = datetime.fromisoformat(data["at"]) if data["at"] else None
            await self._ai_turn(call, data["id"], Role(data["r"]), data["t"], at)
            # One by one: if this fails half-way, the hangup's retry records only what is left.
            await self._state.unbuffer(info.id, turn)
        # Found by the call's id: a number VoIPBin reports oddly must not keep the call from its archive.
        number = info.caller if self._settings.store_raw_numbers else None
        outcome = await self._memory.end_call(call, number or None, info.hangup_reason)
        log.info("VoIPBin call %s hung up: %s", info.id, outcome)
        return Handled(Outcome.APPLIED)

    # -- own-LLM answers -------------------------------------------------------------------------
    async def answer(self, heard: Heard) -> None:
        """Ask our LLM and speak its answer into the call. Runs after the webhook was acknowledged.

        Nothing is spoken into a call that has ended (VoIPBin refuses it), nor an answer to a turn
        that a later-said one has overtaken while the LLM was thinking: that one gets the answer.
        """
        call_id = heard.call.call_id
        bind_call(call_id)
        if self._api is None:
            log.error("no CALLMEMORY_VOIPBIN_ACCESS_KEY: cannot speak an answer into call %s", call_id)
            return
        try:
            reply = await self._calls.respond_later(
                heard, lambda: self._state.still_latest(call_id, heard.spoken)
            )
            if reply is not None:
                bot = self._settings.voipbin_bot(heard.caller.bot_number)
                await self._api.talk(call_id, voipbin.speech_options(reply.say, bot))
        except Exception:
            log.exception("answering VoIPBin call %s failed", call_id)
