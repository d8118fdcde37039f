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
    cm:callref:<platform>:<id>                   str   "<bot>|<caller-hash>" or "ended"

The callref is the only key a webhook can find by call id alone; it holds no phone number of a caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from redis.asyncio import Redis

from callmemory.errors import CallAlreadyEnded, CallerMismatch, CallNotStarted
from callmemory.events import CallRef, Role
from callmemory.memory.keys import CallerId
from callmemory.memory.types import CallerMemory, CallSummary, LiveCall, Turn, clean_profile

_ENDED: Final = "ended"

# Appends one turn to the live transcript and to the caller's capped recent turns, refreshes both TTLs,
# and returns the caller's memory as it now stands: record and read in one atomic round trip.
_APPEND_TURN: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0} end
if status ~= 'live' then return {-1} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local turn = cjson.encode({s=seq, r=ARGV[1], t=ARGV[2], at=tonumber(ARGV[3]), c=ARGV[4], f=tonumber(ARGV[5])})
redis.call('RPUSH', KEYS[2], turn)
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('RPUSH', KEYS[3], turn)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('HSET', KEYS[4], 'seen', ARGV[3])
redis.call('EXPIRE', KEYS[4], ARGV[7])
return {seq, redis.call('HGETALL', KEYS[4]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('LRANGE', KEYS[5], 0, -1)}
"""

# Writes a caller's memory loaded from the archive, unless another request got there first: a blind
# overwrite could drop a turn appended between our archive read and this write. Nor after an erasure:
# a read of the archive that started before it must not bring the erased memory back.
# ARGV: ttl, calls, topic, seen, summary, profile, greeting, number of call summaries, summaries..., turns...
_HYDRATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'calls', ARGV[2], 'topic', ARGV[3], 'seen', ARGV[4],
           'summary', ARGV[5], 'profile', ARGV[6], 'greeting', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local sums = tonumber(ARGV[8])
redis.call('DEL', KEYS[2], KEYS[3])
if sums > 0 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 9, 8 + sums))
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
if #ARGV > 8 + sums then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 9 + sums))
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
"""

# A call was summarised: fold the result into hot memory, if the caller has any (otherwise the next
# rehydration reads it from the archive).
_REMEMBER_SUMMARY: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'summary', ARGV[1], 'profile', ARGV[2], 'greeting', ARGV[3])
-- A rehydration between the archive's commit and this call may have loaded this summary already.
if ARGV[4] ~= '' and redis.call('LINDEX', KEYS[2], -1) ~= ARGV[4] then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return 1
"""

_START_CALL: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if status then return status end
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'started', ARGV[2], 'seq', 0, 'status', 'live')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'new'
"""

# From here on no turn is accepted, so the transcript handed to the archive is the whole call.
_BEGIN_END: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'status', 'ending')
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""

# Only a live call takes a summary: once ending, its state is being archived and the archive takes it.
_SET_SUMMARY: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status ~= 'live' then return -1 end
redis.call('HSET', KEYS[1], 'summary', ARGV[1])
return 1
"""

_FINISH: Final = """
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  if ARGV[1] == '1' then
    redis.call('HINCRBY', KEYS[3], 'calls', 1)
    -- prepared for the call before this one: the template serves until this call is summarised
    redis.call('HDEL', KEYS[3], 'greeting')
  end
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], 'topic', ARGV[2]) end
end
return 1
"""


# An erasure: the tombstone that stops rehydration bringing the archive's old copy back, then the keys.
_ERASE: Final = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local deleted = 0
for i = 2, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
return deleted
"""


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


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


class HotStore:
    """Redis operations for caller memory and live calls. Knows nothing of LLMs or webhooks."""

    def __init__(self, redis: Redis, settings: HotSettings) -> None:
        self._redis = redis
        self._s = settings
        self._append = redis.register_script(_APPEND_TURN)
        self._hydrate = redis.register_script(_HYDRATE)
        self._start = redis.register_script(_START_CALL)
        self._begin_end = redis.register_script(_BEGIN_END)
        self._finish = redis.register_script(_FINISH)
        self._remember_summary = redis.register_script(_REMEMBER_SUMMARY)
        self._erase = redis.register_script(_ERASE)
        self._set_summary = redis.register_script(_SET_SUMMARY)

    # -- key names -------------------------------------------------------------------------------
    def _caller_key(self, caller: CallerId, suffix: str) -> str:
        return f"{self._s.prefix}:{{{caller.caller_hash}}}:{suffix}"

    def _call_keys(self, call: CallRef, caller: CallerId) -> tuple[str, str]:
        state = self._caller_key(caller, f"call:{call.platform}:{call.call_id}")
        return state, f"{state}:log"

    def _callref_key(self, call: CallRef) -> str:
        return f"{self._s.prefix}:callref:{call.platform}:{call.call_id}"

    # -- caller memory ---------------------------------------------------------------------------
    async def read_caller(self, caller: CallerId) -> CallerMemory | None:
        """The caller's hot memory, or None when Redis has none (expired, flushed, never seen)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._caller_key(caller, "meta"))
            pipe.lrange(self._caller_key(caller, "turns"), 0, -1)
            pipe.lrange(self._caller_key(caller, "sums"), 0, -1)
            meta, turns, sums = await pipe.execute()
        if not meta:
            return None
        return self._memory(caller, meta, turns, sums)

    async def hydrate(self, memory: CallerMemory) -> bool:
        """Store memory loaded from the archive; False when hot memory appeared meanwhile."""
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
                *(_encode_summary(s) for s in sums),
                *(_encode_turn(t) for t in recent),
            ],
        )
        return bool(written)

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
    async def start_call(self, call: CallRef, caller: CallerId, started_at: datetime) -> bool:
        """Open the call's live state. True if new, False for a repeated start of the same call."""
        ref_key = self._callref_key(call)
        ref = f"{caller.bot_number}|{caller.caller_hash}"
        if not await self._redis.set(ref_key, ref, nx=True, ex=self._s.call_ttl_s):
            existing = await self._redis.get(ref_key)
            if existing == _ENDED:
                raise CallAlreadyEnded(f"call {call.call_id!r} has already ended")
            if existing is not None and existing != ref:
                raise CallerMismatch(f"call {call.call_id!r} is already in progress for another caller")
        state, _ = self._call_keys(call, caller)
        status = await self._start(
            keys=[state], args=[caller.bot_number, _ms(started_at), self._s.call_ttl_s]
        )
        if status not in ("new", "live"):
            raise CallAlreadyEnded(f"call {call.call_id!r} is ending")
        return bool(status == "new")

    async def locate_call(self, call: CallRef) -> CallerId:
        """Who a live call belongs to; raises if the call never started or has ended."""
        # GETEX: every event of the call keeps its index alive as long as its state (a long call must
        # not lose the index while the state, refreshed by each turn, lives on).
        ref = await self._redis.getex(self._callref_key(call), ex=self._s.call_ttl_s)
        if ref is None:
            raise CallNotStarted(f"call {call.call_id!r} has not started: no ringing event was received")
        if ref == _ENDED:
            raise CallAlreadyEnded(f"call {call.call_id!r} has already ended")
        bot, caller_hash = str(ref).split("|", 1)
        return CallerId(bot_number=bot, caller_hash=caller_hash)

    async def append_turn(
        self, call: CallRef, caller: CallerId, role: Role, text: str, at: datetime, *, fallback: bool = False
    ) -> tuple[Turn, CallerMemory]:
        """Record a turn of a live call; returns it with the caller's memory including it."""
        state, log = self._call_keys(call, caller)
        result = await self._append(
            keys=[
                state,
                log,
                self._caller_key(caller, "turns"),
                self._caller_key(caller, "meta"),
                self._caller_key(caller, "sums"),
            ],
            args=[
                str(role),
                text,
                _ms(at),
                call.call_id,
                int(fallback),
                self._s.recent_turns,
                self._s.memory_ttl_s,
                self._s.call_ttl_s,
            ],
        )
        if result[0] == 0:
            raise CallNotStarted(f"call {call.call_id!r} has no live state (never started or expired)")
        if result[0] == -1:
            raise CallAlreadyEnded(f"call {call.call_id!r} is ending; no more turns are accepted")
        seq, meta, turns, sums = result
        turn = Turn(
            seq=int(seq), role=role, text=text, at=_from_ms(_ms(at)), call_id=call.call_id, fallback=fallback
        )
        return turn, self._memory(caller, _pairs(meta), turns, sums)

    async def begin_end(self, call: CallRef, caller: CallerId) -> LiveCall | None:
        """Freeze the call (no further turns) and return it whole; None if there is no live state."""
        state, log = self._call_keys(call, caller)
        result = await self._begin_end(keys=[state, log])
        if not result:
            return None
        meta, turns = _pairs(result[0]), result[1]
        return LiveCall(
            call=call,
            caller=caller,
            started_at=_from_ms(meta.get("started", 0)),
            transcript=tuple(_decode_turn(t) for t in turns),
            summary=meta.get("summary") or None,
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
        await self._finish(
            keys=[state, log, self._caller_key(caller, "meta")], args=[int(counted), topic or ""]
        )
        # A tombstone, so that late or repeated events for this call are recognised as such.
        await self._redis.set(self._callref_key(call), _ENDED, ex=self._s.call_ttl_s)

    async def erase(self, caller: CallerId, erased_at: datetime) -> HotErasure:
        """Delete every key of the caller, live calls included, and leave a tombstone for a while."""
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
            k.removeprefix(calls_prefix)
            for k in found
            if k.startswith(calls_prefix) and not k.endswith(":log")
        ]
        deleted = await self._erase(
            keys=[tombstone, *sorted(found)], args=[_ms(erased_at), self._s.call_ttl_s]
        )
        for call in live:  # "<platform>:<id>": their late events now meet an ended call
            await self._redis.set(f"{self._s.prefix}:callref:{call}", _ENDED, ex=self._s.call_ttl_s)
        return HotErasure(keys=int(deleted), live_calls=len(live))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
