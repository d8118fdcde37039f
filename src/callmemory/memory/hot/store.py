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
from callmemory.memory.profile import clean_profile
from callmemory.memory.types import CallerMemory, CallSummary, DuplicateEvent, EventAnswer, LiveCall, Turn

_ENDED: Final = "ended"

# One turn onto a live call's transcript (KEYS[1] state, KEYS[2] log) and the caller's capped recent turns
# (KEYS[3] turns, KEYS[4] meta), refreshing their TTLs: shared by the scripts that record turns.
# `spoken` (or '') is the platform's key of where in the call the turn was said, for platforms whose
# deliveries arrive out of order: the turn goes in front of the first recorded turn said after it, in both
# lists, so that the transcript, the archive and the prompt follow the order of speech. The seq numbers
# then no longer follow the list; the archive numbers a call's turns by their place in it.
_PUSH_TURN: Final = """
local function push_turn(keys, role, text, at, call_id, fallback, cap, memory_ttl, call_ttl, spoken)
  local seq = redis.call('HINCRBY', keys[1], 'seq', 1)
  local entry = {s=seq, r=role, t=text, at=tonumber(at), c=call_id, f=tonumber(fallback)}
  local later = false
  if spoken and spoken ~= '' then
    entry.k = spoken
    for _, raw in ipairs(redis.call('LRANGE', keys[2], 0, -1)) do
      local other = cjson.decode(raw)
      if other.k and other.k > spoken then later = raw break end
    end
  end
  local turn = cjson.encode(entry)
  -- The idle clock never goes back: a turn said earlier may arrive last.
  if tonumber(at) > tonumber(redis.call('HGET', keys[1], 'last') or '0') then
    redis.call('HSET', keys[1], 'last', at)
  end
  if later then
    redis.call('LINSERT', keys[2], 'BEFORE', later, turn)
    -- Trimmed from the recent turns already, the later one was among the oldest: so is this one.
    if redis.call('LINSERT', keys[3], 'BEFORE', later, turn) <= 0 then redis.call('LPUSH', keys[3], turn) end
  else
    redis.call('RPUSH', keys[2], turn)
    redis.call('RPUSH', keys[3], turn)
  end
  redis.call('EXPIRE', keys[1], call_ttl)
  redis.call('EXPIRE', keys[2], call_ttl)
  redis.call('LTRIM', keys[3], -tonumber(cap), -1)
  redis.call('EXPIRE', keys[3], memory_ttl)
  redis.call('HSET', keys[4], 'seen', at)
  redis.call('EXPIRE', keys[4], memory_ttl)
  return seq
end
"""

# Appends one turn to the live transcript and to the caller's capped recent turns, refreshes both TTLs,
# and returns the caller's memory as it now stands (unless ARGV[11] is 0, for the bot's turns, whose
# memory nobody reads): record and read in one atomic round trip. ARGV[12] is where the turn was spoken
# (see push_turn). With an event key (ARGV[9]) the platform's event is claimed in the same step: a
# caller turn only if the event was never seen ({-2, answer-or-""} otherwise); a bot turn only if no
# answer is stored for it yet ({-2, answer} otherwise), and it becomes the stored answer.
_APPEND_TURN: Final = (
    _PUSH_TURN
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0} end
if status ~= 'live' then return {-1} end
if ARGV[9] ~= '' then
  local seen = redis.call('HGET', KEYS[5], ARGV[9])
  if ARGV[10] == 'claim' then
    if seen then return {-2, seen} end
    redis.call('HSET', KEYS[5], ARGV[9], '')
  else
    if seen and seen ~= '' then return {-2, seen} end
    redis.call('HSET', KEYS[5], ARGV[9], cjson.encode({t=ARGV[2], f=tonumber(ARGV[5])}))
  end
  -- After the write: an answer may be the first entry (a greeting), and EXPIRE skips a missing key.
  redis.call('EXPIRE', KEYS[5], ARGV[8])
end
local seq = push_turn(KEYS, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[12])
if ARGV[11] == '0' then return {seq} end
return {seq, redis.call('HGETALL', KEYS[4]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('LRANGE', KEYS[6], 0, -1)}
"""
)

# Writes a caller's memory loaded from the archive, unless another request got there first: a blind
# overwrite could drop a turn appended between our archive read and this write. Nor after an erasure:
# a read of the archive that started before it must not bring the erased memory back. Memory marked
# partial (begun while the archive was unreachable) is replaced by the archive's, keeping those of its
# turns that the archive does not have yet (calls not archived so far), after the archive's.
# ARGV: ttl, calls, topic, seen, summary, profile, greeting, number of call summaries, recent turns cap,
# summaries..., turns...
_HYDRATE: Final = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local kept = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'partial') ~= '1' then return 0 end
  local archived = {}
  for i = 10 + tonumber(ARGV[8]), #ARGV do
    local t = cjson.decode(ARGV[i])
    archived[t.c .. '|' .. t.s] = true
  end
  for _, raw in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local t = cjson.decode(raw)
    if not archived[t.c .. '|' .. t.s] then table.insert(kept, raw) end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'calls', ARGV[2], 'topic', ARGV[3], 'seen', ARGV[4],
           'summary', ARGV[5], 'profile', ARGV[6], 'greeting', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local sums = tonumber(ARGV[8])
if sums > 0 then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 10, 9 + sums))
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
if #ARGV > 9 + sums then redis.call('RPUSH', KEYS[2], unpack(ARGV, 10 + sums)) end
if #kept > 0 then redis.call('RPUSH', KEYS[2], unpack(kept)) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[9]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
"""

# The archive could not be read when the caller's call began: what Redis gathers from here on is only
# part of their memory, to be completed by the next rehydration (see _HYDRATE).
_MARK_PARTIAL: Final = """
redis.call('HSET', KEYS[1], 'partial', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
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

# Opens a call's live state and greets the caller in the same step: a ringing is what the caller waits
# through in silence, so it is one round trip. The greeting follows Greetings.for_caller (the prepared
# one, else the template for a new caller, a returning one with a topic, or without): the templates come
# in ARGV[4..6], and ARGV[10] is 0 when the call opens without a greeting. Without complete hot memory
# (KEYS[4] missing or partial) the caller is not greeted here: their memory must come from the archive
# first. A repeated start returns the call's first turn instead. Returns {status, first turn or false,
# then the caller's memory as it was before this call: meta, recent turns, call summaries}.
_START_CALL: Final = (
    _PUSH_TURN
    + """
local memory = {redis.call('HGETALL', KEYS[4]), redis.call('LRANGE', KEYS[3], 0, -1),
                redis.call('LRANGE', KEYS[5], 0, -1)}
local status = redis.call('HGET', KEYS[1], 'status')
if status then return {status, redis.call('LINDEX', KEYS[2], 0), unpack(memory)} end
redis.call('HSET', KEYS[1], 'bot', ARGV[1], 'started', ARGV[2], 'last', ARGV[2], 'seq', 0, 'status', 'live')
redis.call('EXPIRE', KEYS[1], ARGV[3])
local meta = {}
for i = 1, #memory[1], 2 do meta[memory[1][i]] = memory[1][i + 1] end
if ARGV[10] ~= '1' or #memory[1] == 0 or meta.partial == '1' then return {'new', false, unpack(memory)} end
local greeting = meta.greeting
if not greeting or greeting == '' then
  if tonumber(meta.calls or '0') == 0 and #memory[2] == 0 then
    greeting = ARGV[4]
  elseif meta.topic and meta.topic ~= '' then
    greeting = string.gsub(ARGV[5], '{topic}', (string.gsub(meta.topic, '%%', '%%%%')))
  else
    greeting = ARGV[6]
  end
end
push_turn(KEYS, 'bot', greeting, ARGV[2], ARGV[7], 0, ARGV[8], ARGV[9], ARGV[3])
return {'new', redis.call('LINDEX', KEYS[2], 0), unpack(memory)}
"""
)

# From here on no turn is accepted, so the transcript handed to the archive is the whole call. The first
# end time and reason stick, so a retried or swept end archives the call as it was first ended. With an
# idle cutoff (ARGV[1], the sweeper's) a call active since then is left alone and its last activity
# returned instead.
_BEGIN_END: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[1] ~= '' then
  local last = redis.call('HGET', KEYS[1], 'last') or '0'
  if tonumber(last) > tonumber(ARGV[1]) then return last end
end
redis.call('HSET', KEYS[1], 'status', 'ending')
if ARGV[2] ~= '' then redis.call('HSETNX', KEYS[1], 'ended', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'reason', ARGV[3]) end
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

# Hands out due entries of a schedule (a sorted set scored by due time) and pushes each one a lease into
# the future, so that another instance does not pick it up while this one works on it.
_CLAIM_DUE: Final = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member) end
return due
"""

# Postgres refused the frozen call: count it on the call's state, which, with its transcript, is kept
# without expiry. 0 when the state is gone.
_NOTE_REFUSAL: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local refusals = redis.call('HINCRBY', KEYS[1], 'refusals', 1)
redis.call('HSET', KEYS[1], 'refused', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
return refusals
"""

_RELEASE_LOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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
        self._append = redis.register_script(_APPEND_TURN)
        self._hydrate = redis.register_script(_HYDRATE)
        self._mark_partial = redis.register_script(_MARK_PARTIAL)
        self._start = redis.register_script(_START_CALL)
        self._begin_end = redis.register_script(_BEGIN_END)
        self._finish = redis.register_script(_FINISH)
        self._remember_summary = redis.register_script(_REMEMBER_SUMMARY)
        self._erase = redis.register_script(_ERASE)
        self._set_summary = redis.register_script(_SET_SUMMARY)
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._release = redis.register_script(_RELEASE_LOCK)
        self._note_refusal = redis.register_script(_NOTE_REFUSAL)
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
