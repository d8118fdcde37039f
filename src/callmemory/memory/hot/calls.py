"""Live calls: opened (with the greeting), located by call id, checked against their callref."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from callmemory.core.errors import CallAlreadyEnded, CallerMismatch, CallNotStarted
from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.core.trust import Trust
from callmemory.memory.greeting import Greetings
from callmemory.memory.hot.callers import complete_memory, memory_of
from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.codec import decode_answer, decode_turn, ms, pairs
from callmemory.memory.hot.keys import ENDED, Keys, is_ended, member
from callmemory.memory.hot.lua import Invocation, Pipe, Script, pipelined
from callmemory.memory.hot.settings import HotSettings
from callmemory.memory.types import CallerMemory, EventAnswer

# Live calls whose caller this process has seen, so that a call's later events skip the look-up of its
# caller: a round trip per speech turn and hangup. A call lasts minutes; this covers thousands at once.
_KNOWN_CALLS: Final = 10_000


@dataclass(frozen=True, slots=True)
class Started:
    is_new: bool  # False for a repeated start of the same call
    memory: CallerMemory | None  # None when Redis has no complete memory of the caller
    greeting: str | None  # what the caller was greeted with; None when not greeted (yet)


class _StartCall(Script):
    name = "start_call"
    libraries = ("push_turn", "greeting")

    def __call__(
        self,
        call: CallRef,
        caller: CallerId,
        started_at: datetime,
        greetings: Greetings | None,
        *,
        trust: Trust,
        apart: bool,
    ) -> Invocation:
        k = self._keys
        return self.invoke(
            [k.state(call, caller), k.log(call, caller), k.turns(caller), k.meta(caller), k.sums(caller)],
            [
                caller.bot_number,
                ms(started_at),
                self._s.call_ttl_s,
                *(_templates(greetings) if greetings else ("", "", "")),
                call.call_id,
                self._s.recent_turns,
                self._s.memory_ttl_s,
                int(greetings is not None),
                str(trust),
                int(apart),
            ],
        )


class _Verify(Script):
    name = "verify"

    def __call__(self, call: CallRef, caller: CallerId, at: datetime) -> Invocation:
        k = self._keys
        return self.invoke(
            [k.state(call, caller), k.log(call, caller), k.turns(caller), k.meta(caller)],
            [self._s.recent_turns, self._s.memory_ttl_s, ms(at)],
        )


class _Greet(Script):
    name = "greet"
    libraries = ("greeting",)

    def __call__(self, memory: CallerMemory, greetings: Greetings) -> Invocation:
        return self.invoke(
            [],
            [
                memory.greeting or "",
                memory.call_count,
                int(bool(memory.recent)),
                memory.last_topic or "",
                *_templates(greetings),
            ],
        )


def _templates(greetings: Greetings) -> tuple[str, str, str]:
    return greetings.new, greetings.returning, greetings.returning_no_topic


class LiveCalls:
    """Redis operations that open a call or find whose it is."""

    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._s = settings
        self._start = _StartCall(redis, keys, settings)
        self._greet = _Greet(redis, keys, settings)
        self._verify = _Verify(redis, keys, settings)
        # Never trusted on its own: the next command on the call checks its callref in the same round
        # trip (see run_checked), so an entry made stale by a hangup on another worker does no harm.
        self._known: dict[CallRef, CallerId] = {}

    async def start_call(
        self,
        call: CallRef,
        caller: CallerId,
        started_at: datetime,
        greetings: Greetings | None,
        *,
        trust: Trust = Trust.UNVERIFIED,
        apart: bool = False,
    ) -> Started:
        """Open the call's live state, read the caller's hot memory as it was before this call, and
        greet them from it with `greetings` (see scripts/start_call.lua); for a repeated start, what they
        were greeted with. Without `greetings` the call opens ungreeted. A call kept `apart` reads no
        memory and is greeted as a new caller (see core/trust.py).

        One round trip: a ringing is what the caller waits through in silence.
        """
        ref_key = self._keys.callref(call)
        ref = f"{caller.bot_number}|{caller.caller_hash}"
        state, log = self._keys.state(call, caller), self._keys.log(call, caller)
        scheduled = member(call, caller)
        start = self._start(call, caller, started_at, greetings, trust=trust, apart=apart)

        def claim(pipe: Pipe) -> None:
            # Not one SET NX GET: Redis 6.2 (the embedded server) refuses NX with GET.
            pipe.set(ref_key, ref, nx=True, ex=self._s.call_ttl_s)
            pipe.get(ref_key)
            # Scheduled before the state exists, so that no failure part-way leaves a call that the
            # sweeper cannot find (a schedule entry without state it simply drops). Scored by the call's
            # start; the sweeper refreshes the score from the call's own last activity when it finds
            # the call still busy, so turns cost no extra round trip here. NX: a repeated start keeps
            # the score it has.
            pipe.zadd(self._keys.live(caller), {scheduled: ms(started_at)}, nx=True)

        _, existing, _, (status, first, meta, turns, sums) = await pipelined(
            self._redis, claim, start.queue, script=self._start
        )
        if existing is not None and existing != ref:
            # The call belongs to someone else or has ended: undo what this start wrote in passing.
            async with self._redis.pipeline(transaction=False) as pipe:
                if status == "new":
                    pipe.delete(state, log)
                    if first is not None:  # the greeting went into the caller's recent turns too
                        pipe.lrem(self._keys.turns(caller), -1, first)
                pipe.zrem(self._keys.live(caller), scheduled)
                await pipe.execute()
            if is_ended(existing):
                raise CallAlreadyEnded(f"call {call.call_id!r} has already ended")
            raise CallerMismatch(f"call {call.call_id!r} is already in progress for another caller")
        if status not in ("new", "live"):
            raise CallAlreadyEnded(f"call {call.call_id!r} is ending")
        self._remember_caller(call, caller)
        said = decode_turn(str(first)) if first else None
        return Started(
            is_new=status == "new",
            memory=complete_memory(caller, pairs(meta), turns, sums),
            greeting=said.text if said is not None and said.role is Role.BOT else None,
        )

    async def verify(self, call: CallRef, caller: CallerId, at: datetime) -> bool:
        """Mark a live call verified (scripts/verify.lua); False when it already was. The callref is
        checked in the same round trip, as for a turn."""
        result = int(await self.run_checked(self._verify(call, caller, at), call, caller))
        if result == 0:
            raise CallNotStarted(f"call {call.call_id!r} has no live state (never started or expired)")
        if result == -1:
            raise CallAlreadyEnded(f"call {call.call_id!r} is ending; it can no longer be verified")
        return result == 1

    async def read_for_call(self, call: CallRef, caller: CallerId) -> CallerMemory | None:
        """The memory a live call may read: for a call kept apart (core/trust.py) its own latest turns,
        as the append script reads them back; else the caller's hot memory, None when Redis has none."""
        meta_key, turns_key, sums_key = self._keys.memory(caller)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys.state(call, caller), "apart")
            pipe.lrange(self._keys.log(call, caller), -self._s.recent_turns, -1)
            pipe.hgetall(meta_key)
            pipe.lrange(turns_key, 0, -1)
            pipe.lrange(sums_key, 0, -1)
            apart, said, meta, turns, sums = await pipe.execute()
        if apart == "1":
            return memory_of(caller, {"apart": "1"}, said, [])
        return complete_memory(caller, meta, turns, sums)

    async def greeting_for(self, memory: CallerMemory, greetings: Greetings) -> str:
        """What `memory` is greeted with, by the rule start_call applies (for memory from the archive)."""
        return str(await self._greet(memory, greetings).run())

    def known_caller(self, call: CallRef) -> CallerId | None:
        """The caller of a call this process has seen live, without a round trip; unchecked."""
        return self._known.get(call)

    def forget_known(self, call: CallRef) -> None:
        self._known.pop(call, None)

    def _remember_caller(self, call: CallRef, caller: CallerId) -> None:
        self._known[call] = caller
        if len(self._known) > _KNOWN_CALLS:
            del self._known[next(iter(self._known))]  # the oldest

    async def locate_call(self, call: CallRef) -> CallerId:
        """Who a live call belongs to; raises if the call never started or has ended."""
        # GETEX: every event of the call keeps its index alive as long as its state (a long call must
        # not lose the index while the state, refreshed by each turn, lives on).
        ref = await self._redis.getex(self._keys.callref(call), ex=self._s.call_ttl_s)
        caller = self._caller_of_ref(call, ref)
        self._remember_caller(call, caller)
        return caller

    def _caller_of_ref(self, call: CallRef, ref: str | bytes | None) -> CallerId:
        if ref is None:
            raise CallNotStarted(f"call {call.call_id!r} has not started: no ringing event was received")
        if is_ended(ref):
            self.forget_known(call)
            raise CallAlreadyEnded(f"call {call.call_id!r} has already ended")
        bot, caller_hash = str(ref).split("|", 1)
        return CallerId(bot_number=bot, caller_hash=caller_hash)

    async def run_checked(self, script: Invocation, call: CallRef, caller: CallerId) -> Any:
        """Run `script` in the round trip that also reads the call's callref, which must name `caller`
        (perhaps from known_caller()) and a live call.

        The scripts refuse a call that is not live; the callref tells an ended call from a lost one.
        """

        def commands(pipe: Pipe) -> None:
            # GETEX: every event of the call keeps its index alive as long as its state.
            pipe.getex(self._keys.callref(call), ex=self._s.call_ttl_s)
            script.queue(pipe)

        # One step: on a cluster the read and the script go to their shards at once, in no set order,
        # which is harmless for a read.
        ref, result = await pipelined(self._redis, commands, script=script.script)
        if self._caller_of_ref(call, ref) != caller:
            raise CallerMismatch(f"call {call.call_id!r} is in progress for another caller")
        return result

    async def ended_caller(self, call: CallRef) -> CallerId | None:
        """The caller of a call that has ended (from its tombstone), or None."""
        ref = await self._redis.get(self._keys.callref(call))
        if ref is None or not is_ended(ref) or ref == ENDED:
            return None
        _, bot, caller_hash = str(ref).split("|", 2)
        return CallerId(bot_number=bot, caller_hash=caller_hash)

    async def event_answer(self, call: CallRef, caller: CallerId, event: str) -> EventAnswer | None:
        """The answer stored for a platform event; None while it is pending or if it is unknown."""
        seen = await self.event_seen(call, caller, event)
        return seen if isinstance(seen, EventAnswer) else None

    async def event_seen(self, call: CallRef, caller: CallerId, event: str) -> EventAnswer | bool:
        """The answer stored for a platform event; else True while it is pending, False if unknown."""
        raw = await self._redis.hget(self._keys.events(call, caller), event)
        return decode_answer(str(raw)) if raw else raw is not None
