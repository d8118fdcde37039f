"""Hot memory in Redis: each caller's recent turns and each live call's state and transcript.

Key layout (prefix `cm` by default). Every key of one caller carries the caller hash as its Redis
Cluster hash tag, so the scripts below, which touch several of them at once, stay inside one slot:

    cm:{<caller-hash>}:meta                      hash  calls, topic, seen,        TTL memory_ttl
                                                       summary, profile, greeting
    cm:{<caller-hash>}:turns                     list  recent turns, JSON         TTL memory_ttl
    cm:{<caller-hash>}:sums                      list  recent call summaries      TTL memory_ttl
    cm:{<caller-hash>}:erased                    str   tombstone after an erasure TTL call_ttl
    cm:{<caller-hash>}:call:<platform>:<id>      hash  bot, started, seq, status  TTL call_ttl
    cm:{<caller-hash>}:call:<platform>:<id>:log  list  the live call's transcript TTL call_ttl
    cm:{<caller-hash>}:call:<platform>:<id>:ev   hash  event key -> answer ("" while pending) TTL call_ttl
                                                       (`greeting`: one picked after a rehydration)
    cm:callref:<platform>:<id>                   str   "<bot>|<caller-hash>", "ended|<bot>|<hash>" after
    cm:live                                      zset  live calls by last known activity (sweeper)
    cm:pending                                   zset  ended calls waiting for Postgres, by due time
    cm:quarantine                                hash  pending member -> {reason, since, refusals}
    cm:lock:<name>                               str   a lock's holder token, with an expiry

The callref is the only key a webhook can find by call id alone; it holds no phone number of a caller.

A call that Postgres refuses (its own data, not an outage) counts the refusals in its state hash
(`refusals`, and the last `refused` reason). After CALLMEMORY_ARCHIVE_REFUSALS_MAX of them it leaves
`cm:pending` for `cm:quarantine`, so that the flusher no longer tries it; its state and transcript keys
stay in place without an expiry (as for any call waiting for the archive) until `callmemory quarantine
retry` archives it or an erasure deletes it. `callmemory quarantine list|export` read them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from callmemory.conversation.greeting import Greetings
from callmemory.core.errors import CallAlreadyEnded, CallerMismatch, CallNotStarted
from callmemory.core.events import CallRef, Role
from callmemory.core.identity import CallerId
from callmemory.memory.hot.lua import source
from callmemory.memory.types import (
    CallerMemory,
    CallSummary,
    DuplicateEvent,
    EventAnswer,
    LiveCall,
    Turn,
    clean_profile,
)

_ENDED: Final = "ended"


@dataclass(frozen=True, slots=True)
class Started:
    is_new: bool  # False for a repeated start of the same call
    memory: CallerMemory | None  # None when Redis has no complete memory of the caller
    greeting: str | None  # what the caller was greeted with; None when not greeted (yet)


# Live calls whose caller this process has seen, so that a call's later events skip the look-up of its
# caller: a round trip per speech turn and hangup. A call lasts minutes; this covers thousands at once.
_KNOWN_CALLS: Final = 10_000


@dataclass(frozen=True, slots=True)
class QuarantinedCall:
    call: CallRef
    caller: CallerId
    reason: str  # the last refusal's
    since: datetime
    refusals: int


@dataclass(frozen=True, slots=True)
class HotErasure:
    keys: int  # keys deleted
    live_calls: int  # calls in progress that were cut off (their late events are refused)


@dataclass(frozen=True, slots=True)
class HotSettings:
    prefix: str = "cm"
    recent_turns: int = 20
    memory_ttl_s: int = 30 * 24 * 3600
    call_ttl_s: int = 24 * 3600
    call_summaries: int = 10  # summaries of the most recent calls kept hot


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _from_ms(value: str | int | float) -> datetime:
    return datetime.fromtimestamp(int(float(value)) / 1000, UTC)


def _encode_turn(turn: Turn) -> str:
    return json.dumps(
        {
            "s": turn.seq,
            "r": str(turn.role),
            "t": turn.text,
            "at": _ms(turn.at),
            "c": turn.call_id,
            "f": int(turn.fallback),
        },
        ensure_ascii=False,
    )


# Each speech turn reads the caller's recent turns back, so the same few JSON strings are decoded over and
# over; a Turn is immutable, so one decoded copy serves them all.
@lru_cache(maxsize=4096)
def _decode_turn(raw: str) -> Turn:
    data = json.loads(raw)
    return Turn(
        seq=int(data["s"]),
        role=Role(data["r"]),
        text=data["t"],
        at=_from_ms(data["at"]),
        call_id=data["c"],
        fallback=bool(data.get("f")),
    )


def _encode_summary(summary: CallSummary) -> str:
    return json.dumps(
        {"c": summary.call_id, "at": _ms(summary.started_at), "t": summary.text}, ensure_ascii=False
    )


def _decode_summary(raw: str) -> CallSummary:
    data = json.loads(raw)
    return CallSummary(call_id=data["c"], started_at=_from_ms(data["at"]), text=data["t"])


def _decode_answer(raw: str) -> EventAnswer:
    data = json.loads(raw)
    return EventAnswer(text=data["t"], fallback=bool(data.get("f")))


def _is_ended(ref: str | bytes) -> bool:
    return str(ref) == _ENDED or str(ref).startswith(f"{_ENDED}|")


def _member(call: CallRef, caller: CallerId) -> str:
    # The call id goes last: it is the only part that may itself contain "|".
    return f"{call.platform}|{caller.bot_number}|{caller.caller_hash}|{call.call_id}"


def _parse_member(member: str) -> tuple[CallRef, CallerId]:
    platform, bot, caller_hash, call_id = member.split("|", 3)
    return CallRef(platform, call_id), CallerId(bot_number=bot, caller_hash=caller_hash)


def _evalsha(pipe: Pipeline, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


class HotStore:
    """Redis operations for caller memory and live calls. Knows nothing of LLMs or webhooks."""

    def __init__(self, redis: Redis, settings: HotSettings) -> None:
        self._redis = redis
        self._s = settings
        self._append = redis.register_script(source("append_turn", "push_turn"))
        self._hydrate = redis.register_script(source("hydrate"))
        self._mark_partial = redis.register_script(source("mark_partial"))
        self._start = redis.register_script(source("start_call", "push_turn"))
        self._begin_end = redis.register_script(source("begin_end"))
        self._finish = redis.register_script(source("finish"))
        self._remember_summary = redis.register_script(source("remember_summary"))
        self._erase = redis.register_script(source("erase"))
        self._set_summary = redis.register_script(source("set_summary"))
        self._claim_due = redis.register_script(source("claim_due"))
        self._release = redis.register_script(source("release_lock"))
        self._note_refusal = redis.register_script(source("note_refusal"))
        # Never trusted on its own: the next command on the call checks its callref in the same round
        # trip (see _check_ref), so an entry made stale by a hangup on another worker does no harm.
        self._known: dict[CallRef, CallerId] = {}

    # -- key names -------------------------------------------------------------------------------
    def _caller_key(self, caller: CallerId, suffix: str) -> str:
        return f"{self._s.prefix}:{{{caller.caller_hash}}}:{suffix}"

    def _call_keys(self, call: CallRef, caller: CallerId) -> tuple[str, str]:
        state = self._caller_key(caller, f"call:{call.platform}:{call.call_id}")
        return state, f"{state}:log"

    def _callref_key(self, call: CallRef) -> str:
        return f"{self._s.prefix}:callref:{call.platform}:{call.call_id}"

    def _events_key(self, call: CallRef, caller: CallerId) -> str:
        return self._caller_key(caller, f"call:{call.platform}:{call.call_id}:ev")

    # Instance-wide schedules. Each is one key, touched only by single-key commands and scripts, so
    # they need no hash tag; their members name the call and its caller.
    @property
    def _live_key(self) -> str:
        return f"{self._s.prefix}:live"

    @property
    def _pending_key(self) -> str:
        return f"{self._s.prefix}:pending"

    @property
    def _quarantine_key(self) -> str:
        return f"{self._s.prefix}:quarantine"

    async def _pipelined(self, commands: Callable[[Pipeline], None], script: AsyncScript) -> list[Any]:
        """Run `commands`, which include `script`, in one round trip, without a transaction.

        redis-py's own way of running a script in a pipeline first asks the server whether it knows the
        script: a second round trip on every call. Here the script is sent by its hash alone, and loaded
        only when the server answers that it does not know it (a restarted or flushed Redis); the
        commands are then sent again, so they must be safe to repeat.
        """
        try:
            return await self._send(commands)
        except NoScriptError:
            await self._redis.script_load(script.script)
            return await self._send(commands)

    async def _send(self, commands: Callable[[Pipeline], None]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            commands(pipe)
            return list(await pipe.execute())

    # -- caller memory ---------------------------------------------------------------------------
    async def read_caller(self, caller: CallerId) -> CallerMemory | None:
        """The caller's hot memory, or None when Redis has none (expired, flushed, never seen)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._caller_key(caller, "meta"))
            pipe.lrange(self._caller_key(caller, "turns"), 0, -1)
            pipe.lrange(self._caller_key(caller, "sums"), 0, -1)
            meta, turns, sums = await pipe.execute()
        return self._complete_memory(caller, meta, turns, sums)

    async def hydrate(self, memory: CallerMemory) -> bool:
        """Store memory loaded from the archive; False when complete hot memory appeared meanwhile."""
        recent = memory.recent[-self._s.recent_turns :]
        sums = memory.call_summaries[-self._s.call_summaries :] if self._s.call_summaries else ()
        caller = memory.caller
        written = await self._hydrate(
            keys=[
                self._caller_key(caller, "meta"),
                self._caller_key(caller, "turns"),
                self._caller_key(caller, "sums"),
                self._caller_key(caller, "erased"),
            ],
            args=[
                self._s.memory_ttl_s,
                memory.call_count,
                memory.last_topic or "",
                _ms(recent[-1].at) if recent else 0,
                memory.summary or "",
                json.dumps(dict(memory.profile), ensure_ascii=False),
                memory.greeting or "",
                len(sums),
                self._s.recent_turns,
                *(_encode_summary(s) for s in sums),
                *(_encode_turn(t) for t in recent),
            ],
        )
        return bool(written)

    async def mark_partial(self, caller: CallerId) -> None:
        """The caller's call begins without their archived memory: the next read rehydrates it."""
        await self._mark_partial(keys=[self._caller_key(caller, "meta")], args=[self._s.memory_ttl_s])

    async def remember_summary(self, memory: CallerMemory, latest: CallSummary | None) -> bool:
        """Store a freshly summarised caller's long-term memory; False when they have no hot memory."""
        caller = memory.caller
        done = await self._remember_summary(
            keys=[self._caller_key(caller, "meta"), self._caller_key(caller, "sums")],
            args=[
                memory.summary or "",
                json.dumps(dict(memory.profile), ensure_ascii=False),
                memory.greeting or "",
                _encode_summary(latest) if latest and self._s.call_summaries else "",
                self._s.call_summaries,
                self._s.memory_ttl_s,
            ],
        )
        return bool(done)

    def _complete_memory(
        self, caller: CallerId, meta: dict[str, str], turns: list[str], sums: list[str]
    ) -> CallerMemory | None:
        """The caller's memory as read; None when there is none, or only a part (see mark_partial)."""
        if not meta or meta.get("partial") == "1":
            return None
        return self._memory(caller, meta, turns, sums)

    def _memory(
        self, caller: CallerId, meta: dict[str, str], turns: list[str], sums: list[str]
    ) -> CallerMemory:
        return CallerMemory(
            caller=caller,
            call_count=int(meta.get("calls", 0)),
            last_topic=meta.get("topic") or None,
            recent=tuple(_decode_turn(t) for t in turns),
            summary=meta.get("summary") or None,
            profile=clean_profile(json.loads(meta.get("profile") or "{}")),
            greeting=meta.get("greeting") or None,
            call_summaries=tuple(_decode_summary(s) for s in sums),
        )

    # -- live calls ------------------------------------------------------------------------------
    async def start_call(
        self, call: CallRef, caller: CallerId, started_at: datetime, greetings: Greetings | None
    ) -> Started:
        """Open the call's live state, read the caller's hot memory as it was before this call, and
        greet them from it with `greetings` (see _START_CALL); for a repeated start, what they were
        greeted with. Without `greetings` the call opens ungreeted.

        One round trip: a ringing is what the caller waits through in silence.
        """
        ref_key = self._callref_key(call)
        ref = f"{caller.bot_number}|{caller.caller_hash}"
        state, log = self._call_keys(call, caller)
        member = _member(call, caller)
        s = self._s

        def commands(pipe: Pipeline) -> None:
            # Not one SET NX GET: Redis 6.2 (the embedded server) refuses NX with GET.
            pipe.set(ref_key, ref, nx=True, ex=s.call_ttl_s)
            pipe.get(ref_key)
            _evalsha(
                pipe,
                self._start,
                [
                    state,
                    log,
                    self._caller_key(caller, "turns"),
                    self._caller_key(caller, "meta"),
                    self._caller_key(caller, "sums"),
                ],
                [
                    caller.bot_number,
                    _ms(started_at),
                    s.call_ttl_s,
                    *(
                        (greetings.new, greetings.returning, greetings.returning_no_topic)
                        if greetings
                        else ("", "", "")
                    ),
                    call.call_id,
                    s.recent_turns,
                    s.memory_ttl_s,
                    int(greetings is not None),
                ],
            )
            # Scored by the call's start; the sweeper refreshes the score from the call's own last
            # activity when it finds the call still busy, so turns cost no extra round trip here. NX:
            # a repeated start keeps the score it has.
            pipe.zadd(self._live_key, {member: _ms(started_at)}, nx=True)

        _, existing, (status, first, meta, turns, sums), _ = await self._pipelined(commands, self._start)
        if existing is not None and existing != ref:
            # The call belongs to someone else or has ended: undo what this start wrote in passing.
            async with self._redis.pipeline(transaction=False) as pipe:
                if status == "new":
                    pipe.delete(state, log)
                    if first is not None:  # the greeting went into the caller's recent turns too
                        pipe.lrem(self._caller_key(caller, "turns"), -1, first)
                pipe.zrem(self._live_key, member)
                await pipe.execute()
            if _is_ended(existing):
                raise CallAlreadyEnded(f"call {call.call_id!r} has already ended")
            raise CallerMismatch(f"call {call.call_id!r} is already in progress for another caller")
        if status not in ("new", "live"):
            raise CallAlreadyEnded(f"call {call.call_id!r} is ending")
        self._remember_caller(call, caller)
        said = _decode_turn(str(first)) if first else None
        return Started(
            is_new=status == "new",
            memory=self._complete_memory(caller, _pairs(meta), turns, sums),
            greeting=said.text if said is not None and said.role is Role.BOT else None,
        )

    def known_caller(self, call: CallRef) -> CallerId | None:
        """The caller of a call this process has seen live, without a round trip; unchecked."""
        return self._known.get(call)

    def _remember_caller(self, call: CallRef, caller: CallerId) -> None:
        self._known[call] = caller
        if len(self._known) > _KNOWN_CALLS:
            del self._known[next(iter(self._known))]  # the oldest

    async def locate_call(self, call: CallRef) -> CallerId:
        """Who a live call belongs to; raises if the call never started or has ended."""
        # GETEX: every event of the call keeps its index alive as long as its state (a long call must
        # not lose the index while the state, refreshed by each turn, lives on).
        ref = await self._redis.getex(self._callref_key(call), ex=self._s.call_ttl_s)
        caller = self._caller_of_ref(call, ref)
        self._remember_caller(call, caller)
        return caller

    def _caller_of_ref(self, call: CallRef, ref: str | bytes | None) -> CallerId:
        if ref is None:
            raise CallNotStarted(f"call {call.call_id!r} has not started: no ringing event was received")
        if _is_ended(ref):
            self._known.pop(call, None)
            raise CallAlreadyEnded(f"call {call.call_id!r} has already ended")
        bot, caller_hash = str(ref).split("|", 1)
        return CallerId(bot_number=bot, caller_hash=caller_hash)

    def _check_ref(self, call: CallRef, caller: CallerId, ref: str | bytes | None) -> None:
        """Raise unless the callref read with a command says that `caller`'s call is live."""
        if self._caller_of_ref(call, ref) != caller:
            raise CallerMismatch(f"call {call.call_id!r} is in progress for another caller")

    async def _script(
        self,
        script: AsyncScript,
        keys: list[str],
        args: list[str | int],
        *,
        checking: tuple[CallRef, CallerId] | None = None,
    ) -> Any:
        """Run `script`; with `checking` (a call and its caller, perhaps from known_caller()), in the
        round trip that also reads the call's callref, which must name that caller and a live call.

        The scripts refuse a call that is not live; the callref tells an ended call from a lost one.
        """
        if checking is None:
            return await script(keys=keys, args=args)
        call, caller = checking

        def commands(pipe: Pipeline) -> None:
            # GETEX: every event of the call keeps its index alive as long as its state.
            pipe.getex(self._callref_key(call), ex=self._s.call_ttl_s)
            _evalsha(pipe, script, keys, args)

        ref, result = await self._pipelined(commands, script)
        self._check_ref(call, caller, ref)
        return result

    async def ended_caller(self, call: CallRef) -> CallerId | None:
        """The caller of a call that has ended (from its tombstone), or None."""
        ref = await self._redis.get(self._callref_key(call))
        if ref is None or not _is_ended(ref) or ref == _ENDED:
            return None
        _, bot, caller_hash = str(ref).split("|", 2)
        return CallerId(bot_number=bot, caller_hash=caller_hash)

    async def event_answer(self, call: CallRef, caller: CallerId, event: str) -> EventAnswer | None:
        """The answer stored for a platform event; None while it is pending or if it is unknown."""
        seen = await self.event_seen(call, caller, event)
        return seen if isinstance(seen, EventAnswer) else None

    async def event_seen(self, call: CallRef, caller: CallerId, event: str) -> EventAnswer | bool:
        """The answer stored for a platform event; else True while it is pending, False if unknown."""
        raw = await self._redis.hget(self._events_key(call, caller), event)
        return _decode_answer(str(raw)) if raw else raw is not None

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
        turn, result = await self._append_turn(
            call,
            caller,
            role,
            text,
            at,
            fallback=fallback,
            event=event,
            read_back=True,
            check_ref=True,
            spoken=spoken,
        )
        _, meta, turns, sums = result
        return turn, self._memory(caller, _pairs(meta), turns, sums)

    async def append_reply(
        self, call: CallRef, caller: CallerId, text: str, at: datetime, *, fallback: bool, event: str | None
    ) -> Turn:
        """Record what the bot said, like append_turn, without reading the caller's memory back."""
        turn, _ = await self._append_turn(
            call, caller, Role.BOT, text, at, fallback=fallback, event=event, read_back=False, check_ref=False
        )
        return turn

    async def _append_turn(
        self,
        call: CallRef,
        caller: CallerId,
        role: Role,
        text: str,
        at: datetime,
        *,
        fallback: bool,
        event: str | None,
        read_back: bool,
        check_ref: bool,
        spoken: str | None = None,
    ) -> tuple[Turn, list[Any]]:
        state, log = self._call_keys(call, caller)
        keys = [
            state,
            log,
            self._caller_key(caller, "turns"),
            self._caller_key(caller, "meta"),
            self._events_key(call, caller),
            self._caller_key(caller, "sums"),
        ]
        args: list[str | int] = [
            str(role),
            text,
            _ms(at),
            call.call_id,
            int(fallback),
            self._s.recent_turns,
            self._s.memory_ttl_s,
            self._s.call_ttl_s,
            event or "",
            "claim" if role is Role.CALLER else "answer",
            int(read_back),
            spoken or "",
        ]
        result = await self._script(self._append, keys, args, checking=(call, caller) if check_ref else None)
        if result[0] == -2:
            raise DuplicateEvent(_decode_answer(result[1]) if result[1] else None)
        if result[0] == 0:
            raise CallNotStarted(f"call {call.call_id!r} has no live state (never started or expired)")
        if result[0] == -1:
            raise CallAlreadyEnded(f"call {call.call_id!r} is ending; no more turns are accepted")
        turn = Turn(
            seq=int(result[0]),
            role=role,
            text=text,
            at=_from_ms(_ms(at)),
            call_id=call.call_id,
            fallback=fallback,
        )
        return turn, result

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
        result = await self._end(call, caller, "", ended_at, reason, check_ref=check_ref)
        return result if isinstance(result, LiveCall) else None

    async def end_if_idle(
        self, call: CallRef, caller: CallerId, *, idle_since: datetime, ended_at: datetime, reason: str
    ) -> LiveCall | datetime | None:
        """Freeze the call if it has had no turn since `idle_since`; else its last activity."""
        result = await self._end(call, caller, str(_ms(idle_since)), ended_at, reason)
        if isinstance(result, str | int):
            last = _from_ms(result)
            await self._redis.zadd(self._live_key, {_member(call, caller): _ms(last)}, xx=True)
            return last
        return result

    async def _end(
        self,
        call: CallRef,
        caller: CallerId,
        cutoff: str,
        ended_at: datetime | None,
        reason: str | None,
        *,
        check_ref: bool = False,
    ) -> LiveCall | str | int | None:
        state, log = self._call_keys(call, caller)
        keys = [state, log]
        args: list[str | int] = [cutoff, _ms(ended_at) if ended_at else "", reason or ""]
        result = await self._script(
            self._begin_end, keys, args, checking=(call, caller) if check_ref else None
        )
        if not result:
            return None
        if isinstance(result, str | int):
            return result
        meta, turns = _pairs(result[0]), result[1]
        return LiveCall(
            call=call,
            caller=caller,
            started_at=_from_ms(meta.get("started", 0)),
            transcript=tuple(_decode_turn(t) for t in turns),
            summary=meta.get("summary") or None,
            ended_at=_from_ms(meta["ended"]) if meta.get("ended") else None,
            end_reason=meta.get("reason") or None,
        )

    async def set_call_summary(self, call: CallRef, caller: CallerId, summary: str) -> None:
        """Keep a live call's summary for its archiving; raises once the call is ending or gone."""
        state, _ = self._call_keys(call, caller)
        result = int(await self._set_summary(keys=[state], args=[summary]))
        if result == 0:
            raise CallNotStarted(f"call {call.call_id!r} has no live state")
        if result == -1:
            raise CallAlreadyEnded(f"call {call.call_id!r} is being archived")

    async def forget_caller(self, caller: CallerId) -> None:
        """Drop the caller's hot memory, so that the next read rehydrates it from the archive."""
        await self._redis.delete(*(self._caller_key(caller, s) for s in ("meta", "turns", "sums")))

    async def finish_call(self, call: CallRef, caller: CallerId, *, counted: bool, topic: str | None) -> None:
        """Drop the archived call's live state and fold it into the caller's hot summary."""
        state, log = self._call_keys(call, caller)
        # A tombstone, so that late or repeated events for this call are recognised as such; it names
        # the caller so that a redelivered event can still be given its stored answer.
        ref = f"{_ENDED}|{caller.bot_number}|{caller.caller_hash}"
        member = _member(call, caller)
        self._known.pop(call, None)

        def commands(pipe: Pipeline) -> None:
            _evalsha(
                pipe,
                self._finish,
                [state, log, self._caller_key(caller, "meta")],
                [int(counted), topic or ""],
            )
            pipe.set(self._callref_key(call), ref, ex=self._s.call_ttl_s)
            pipe.zrem(self._live_key, member)
            pipe.zrem(self._pending_key, member)
            pipe.hdel(self._quarantine_key, member)

        await self._pipelined(commands, self._finish)

    # -- schedules: live calls (for the sweeper) and archives waiting for Postgres (for the flusher) --
    async def idle_calls(self, idle_since: datetime, limit: int) -> list[tuple[CallRef, CallerId]]:
        """Live calls whose last known activity is before `idle_since`, oldest first."""
        members = await self._redis.zrangebyscore(self._live_key, "-inf", _ms(idle_since), start=0, num=limit)
        return [_parse_member(str(m)) for m in members]

    async def forget_live(self, call: CallRef, caller: CallerId) -> None:
        await self._redis.zrem(self._live_key, _member(call, caller))

    async def mark_pending(self, call: CallRef, caller: CallerId, due: datetime) -> None:
        """The call is frozen but not archived: the flusher takes it from here.

        Its state stops expiring: it is the only copy of the call until Postgres has it, however long
        the outage lasts. Archiving deletes it.
        """
        member = _member(call, caller)
        state, log = self._call_keys(call, caller)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.persist(state)
            pipe.persist(log)
            pipe.zadd(self._pending_key, {member: _ms(due)})
            pipe.zrem(self._live_key, member)
            await pipe.execute()

    async def claim_pending(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[CallRef, CallerId]]:
        members = await self._claim_due(keys=[self._pending_key], args=[_ms(now), _ms(lease_until), limit])
        return [_parse_member(str(m)) for m in members]

    async def forget_pending(self, call: CallRef, caller: CallerId) -> None:
        await self._redis.zrem(self._pending_key, _member(call, caller))

    async def pending_count(self) -> int:
        return int(await self._redis.zcard(self._pending_key))

    # -- quarantine: calls Postgres keeps refusing, set aside so that they hold back no other ----------
    async def note_refusal(
        self, call: CallRef, caller: CallerId, reason: str, *, at: datetime, quarantine_after: int
    ) -> int:
        """Count a refusal of the frozen call at `at`: retried from then on, or quarantined once refused
        `quarantine_after` times. How many refusals so far; 0 when the call's state is gone."""
        state, log = self._call_keys(call, caller)
        refusals = int(await self._note_refusal(keys=[state, log], args=[reason]))
        if refusals == 0:
            return 0
        member = _member(call, caller)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self._live_key, member)
            if refusals >= quarantine_after:
                entry = {"reason": reason, "since": _ms(at), "refusals": refusals}
                # Into the quarantine before out of the schedule: a crash in between leaves the call in
                # both, and the flusher's next refusal files it again, rather than in neither.
                pipe.hset(self._quarantine_key, member, json.dumps(entry))
                pipe.zrem(self._pending_key, member)
            else:
                pipe.zadd(self._pending_key, {member: _ms(at)})
            await pipe.execute()
        return refusals

    async def quarantined(self) -> list[QuarantinedCall]:
        entries = await self._redis.hgetall(self._quarantine_key)
        found = []
        for member, raw in sorted(entries.items()):
            call, caller = _parse_member(str(member))
            data = json.loads(raw)
            found.append(
                QuarantinedCall(
                    call=call,
                    caller=caller,
                    reason=str(data["reason"]),
                    since=_from_ms(data["since"]),
                    refusals=int(data["refusals"]),
                )
            )
        return found

    async def quarantine_count(self) -> int:
        return int(await self._redis.hlen(self._quarantine_key))

    async def release_quarantined(self, call: CallRef, caller: CallerId) -> None:
        """Out of the quarantine, with its count of refusals back at zero: the next refusals count anew."""
        state, _ = self._call_keys(call, caller)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self._quarantine_key, _member(call, caller))
            pipe.hdel(state, "refusals")
            await pipe.execute()

    # -- locks -----------------------------------------------------------------------------------
    async def acquire(self, name: str, ttl_ms: int) -> str | None:
        """A lock held until released or `ttl_ms` passes; the token to release it, or None if taken."""
        token = secrets.token_hex(8)
        taken = await self._redis.set(f"{self._s.prefix}:lock:{name}", token, nx=True, px=ttl_ms)
        return token if taken else None

    async def release(self, name: str, token: str) -> None:
        # Only by its holder: a lock that expired and was taken by another instance stays theirs.
        await self._release(keys=[f"{self._s.prefix}:lock:{name}"], args=[token])

    async def erase(
        self, caller: CallerId, erased_at: datetime, archived_calls: Sequence[CallRef] = ()
    ) -> HotErasure:
        """Delete every key of the caller, live calls included, and leave a tombstone for a while.

        The ended-call markers of `archived_calls` name the caller (for replaying answers to redelivered
        events); they are cut back to a bare "ended".
        """
        tombstone = self._caller_key(caller, "erased")
        calls_prefix = self._caller_key(caller, "call:")
        # The braces of the hash tag are no glob characters: this matches exactly this caller's keys.
        found = {
            key
            async for key in self._redis.scan_iter(match=self._caller_key(caller, "*"), count=1000)
            if key != tombstone
        }
        found |= {self._caller_key(caller, s) for s in ("meta", "turns", "sums")}
        live = [
            CallRef(*k.removeprefix(calls_prefix).split(":", 1))
            for k in found
            if k.startswith(calls_prefix) and not k.endswith((":log", ":ev"))
        ]
        deleted = await self._erase(
            keys=[tombstone, *sorted(found)], args=[_ms(erased_at), self._s.call_ttl_s]
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in live:
                # Their late events now meet an ended call, and neither sweeper nor flusher looks for them.
                pipe.set(self._callref_key(call), _ENDED, ex=self._s.call_ttl_s)
                pipe.zrem(self._live_key, _member(call, caller))
                pipe.zrem(self._pending_key, _member(call, caller))
                pipe.hdel(self._quarantine_key, _member(call, caller))
            for call in archived_calls:
                pipe.set(self._callref_key(call), _ENDED, xx=True, keepttl=True)
            await pipe.execute()
        return HotErasure(keys=int(deleted), live_calls=len(live))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
