"""A live call's transcript: turns recorded, the call frozen for the archive, and dropped once archived."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from callmemory.core.errors import CallAlreadyEnded, CallNotStarted
from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.core.trust import Trust
from callmemory.memory.hot.callers import memory_of
from callmemory.memory.hot.calls import LiveCalls
from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.codec import decode_answer, decode_turn, from_ms, ms, pairs
from callmemory.memory.hot.keys import ENDED, Keys, member
from callmemory.memory.hot.lua import Invocation, Pipe, Script, pipelined
from callmemory.memory.hot.settings import HotSettings
from callmemory.memory.types import CallerMemory, DuplicateEvent, LiveCall, Turn


class _AppendTurn(Script):
    name = "append_turn"
    libraries = ("push_turn",)

    def __call__(
        self,
        call: CallRef,
        caller: CallerId,
        *,
        role: Role,
        text: str,
        at: datetime,
        fallback: bool,
        event: str | None,
        read_back: bool,
        spoken: str | None,
    ) -> Invocation:
        k = self._keys
        return self.invoke(
            [
                k.state(call, caller),
                k.log(call, caller),
                k.turns(caller),
                k.meta(caller),
                k.events(call, caller),
                k.sums(caller),
            ],
            [
                str(role),
                text,
                ms(at),
                call.call_id,
                int(fallback),
                self._s.recent_turns,
                self._s.memory_ttl_s,
                self._s.call_ttl_s,
                event or "",
                "claim" if role is Role.CALLER else "answer",
                int(read_back),
                spoken or "",
            ],
        )


class _BeginEnd(Script):
    name = "begin_end"

    def __call__(
        self,
        call: CallRef,
        caller: CallerId,
        *,
        idle_since: datetime | None,
        ended_at: datetime | None,
        reason: str | None,
    ) -> Invocation:
        return self.invoke(
            [self._keys.state(call, caller), self._keys.log(call, caller)],
            [str(ms(idle_since)) if idle_since else "", ms(ended_at) if ended_at else "", reason or ""],
        )


class _SetSummary(Script):
    name = "set_summary"

    def __call__(self, call: CallRef, caller: CallerId, summary: str) -> Invocation:
        return self.invoke([self._keys.state(call, caller)], [summary])


class _Finish(Script):
    name = "finish"

    def __call__(self, call: CallRef, caller: CallerId, *, counted: bool, topic: str | None) -> Invocation:
        k = self._keys
        return self.invoke(
            [k.state(call, caller), k.log(call, caller), k.meta(caller)], [int(counted), topic or ""]
        )


class Transcripts:
    """Redis operations on a live call's turns and its end."""

    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings, calls: LiveCalls) -> None:
        self._redis = redis
        self._keys = keys
        self._s = settings
        self._calls = calls
        self._append = _AppendTurn(redis, keys, settings)
        self._begin_end = _BeginEnd(redis, keys, settings)
        self._set_summary = _SetSummary(redis, keys, settings)
        self._finish = _Finish(redis, keys, settings)

    async def append_turn(
        self,
        call: CallRef,
        caller: CallerId,
        role: Role,
        text: str,
        at: datetime,
        *,
        fallback: bool = False,
        event: str | None = None,
        spoken: str | None = None,
    ) -> tuple[Turn, CallerMemory]:
        """Record a turn of a live call; returns it with the caller's memory including it.

        With `event` (the platform's key of the event this turn answers or records), a caller turn is
        recorded only the first time the event is seen, and a bot turn becomes the event's stored
        answer unless one is stored already; either way DuplicateEvent is raised instead. The call's
        callref is checked in the same round trip, so `caller` may come from known_caller(). With `spoken`
        (where in the call it was said, as a key that sorts), it goes before the turns said after it.
        """
        append = self._append(
            call,
            caller,
            role=role,
            text=text,
            at=at,
            fallback=fallback,
            event=event,
            read_back=True,
            spoken=spoken,
        )
        result = await self._calls.run_checked(append, call, caller)
        turn = _recorded(result, call, role=role, text=text, at=at, fallback=fallback)
        _, meta, turns, sums = result
        return turn, memory_of(caller, pairs(meta), turns, sums)

    async def append_reply(
        self, call: CallRef, caller: CallerId, text: str, at: datetime, *, fallback: bool, event: str | None
    ) -> Turn:
        """Record what the bot said, like append_turn, without reading the caller's memory back."""
        append = self._append(
            call,
            caller,
            role=Role.BOT,
            text=text,
            at=at,
            fallback=fallback,
            event=event,
            read_back=False,
            spoken=None,
        )
        return _recorded(await append.run(), call, role=Role.BOT, text=text, at=at, fallback=fallback)

    async def begin_end(
        self,
        call: CallRef,
        caller: CallerId,
        *,
        ended_at: datetime | None = None,
        reason: str | None = None,
        check_ref: bool = False,
    ) -> LiveCall | None:
        """Freeze the call (no further turns) and return it whole; None if there is no live state.

        With `check_ref`, the call's callref is checked in the same round trip, as by append_turn.
        """
        end = self._begin_end(call, caller, idle_since=None, ended_at=ended_at, reason=reason)
        result = await (self._calls.run_checked(end, call, caller) if check_ref else end.run())
        return _frozen(call, caller, result) if result else None

    async def end_if_idle(
        self, call: CallRef, caller: CallerId, *, idle_since: datetime, ended_at: datetime, reason: str
    ) -> LiveCall | datetime | None:
        """Freeze the call if it has had no turn since `idle_since`; else its last activity."""
        result = await self._begin_end(
            call, caller, idle_since=idle_since, ended_at=ended_at, reason=reason
        ).run()
        if not result:
            return None
        if isinstance(result, str | int):
            last = from_ms(result)
            await self._redis.zadd(self._keys.live(caller), {member(call, caller): ms(last)}, xx=True)
            return last
        return _frozen(call, caller, result)

    async def set_call_summary(self, call: CallRef, caller: CallerId, summary: str) -> None:
        """Keep a live call's summary for its archiving; raises once the call is ending or gone."""
        result = int(await self._set_summary(call, caller, summary).run())
        if result == 0:
            raise CallNotStarted(f"call {call.call_id!r} has no live state")
        if result == -1:
            raise CallAlreadyEnded(f"call {call.call_id!r} is being archived")

    async def finish_call(self, call: CallRef, caller: CallerId, *, counted: bool, topic: str | None) -> None:
        """Drop the archived call's live state and fold it into the caller's hot summary."""
        # A tombstone, so that late or repeated events for this call are recognised as such; it names
        # the caller so that a redelivered event can still be given its stored answer.
        ref = f"{ENDED}|{caller.bot_number}|{caller.caller_hash}"
        scheduled = member(call, caller)
        self._calls.forget_known(call)
        finish = self._finish(call, caller, counted=counted, topic=topic)

        def tombstone(pipe: Pipe) -> None:
            pipe.set(self._keys.callref(call), ref, ex=self._s.call_ttl_s)

        def unschedule(pipe: Pipe) -> None:
            pipe.zrem(self._keys.live(caller), scheduled)
            pipe.zrem(self._keys.pending(caller), scheduled)
            pipe.hdel(self._keys.quarantine, scheduled)

        # In this order (one round trip on one server, a step each on a cluster), so that a failure
        # part-way leaves nothing unfinished for good: after the tombstone alone, a retried hangup is
        # answered as archived and the call's frozen state, still scheduled, is archived again (a
        # duplicate, absorbed) and cleared by the sweeper or the flusher; after the state is gone, the
        # schedules' entries point at nothing and are dropped by whichever walks them next.
        await pipelined(self._redis, tombstone, finish.queue, unschedule, script=self._finish)


def _recorded(
    result: list[Any], call: CallRef, *, role: Role, text: str, at: datetime, fallback: bool
) -> Turn:
    """The turn as the append script recorded it, or the script's refusal raised."""
    if result[0] == -2:
        raise DuplicateEvent(decode_answer(result[1]) if result[1] else None)
    if result[0] == 0:
        raise CallNotStarted(f"call {call.call_id!r} has no live state (never started or expired)")
    if result[0] == -1:
        raise CallAlreadyEnded(f"call {call.call_id!r} is ending; no more turns are accepted")
    return Turn(
        seq=int(result[0]), role=role, text=text, at=from_ms(ms(at)), call_id=call.call_id, fallback=fallback
    )


def _frozen(call: CallRef, caller: CallerId, result: list[Any]) -> LiveCall:
    meta, turns = pairs(result[0]), result[1]
    return LiveCall(
        call=call,
        caller=caller,
        started_at=from_ms(meta.get("started", 0)),
        transcript=tuple(decode_turn(t) for t in turns),
        summary=meta.get("summary") or None,
        ended_at=from_ms(meta["ended"]) if meta.get("ended") else None,
        end_reason=meta.get("reason") or None,
        # A call opened before trust was recorded has none: unverified, as any call not vouched for.
        trust=Trust(meta.get("trust") or Trust.UNVERIFIED),
        apart=meta.get("apart") == "1",
    )
