"""Hot memory in Redis: each caller's recent turns and each live call's state and transcript.

Key layout (prefix `cm` by default). Every key of one caller carries the caller hash as its Redis
Cluster hash tag, so the scripts below, which touch several of them at once, stay inside one slot:

    cm:{<caller-hash>}:meta                      hash  calls, topic, seen,        TTL memory_ttl
                                                       summary, profile, greeting
    cm:{<caller-hash>}:turns                     list  recent turns, JSON         TTL memory_ttl
    cm:{<caller-hash>}:sums                      list  recent call summaries      TTL memory_ttl
    cm:{<caller-hash>}:erased                    str   tombstone after an erasure TTL call_ttl
    cm:{<caller-hash>}:call:<platform>:<id>      hash  bot, started, seq, status, TTL call_ttl
                                                       trust, apart (core/trust.py)
    cm:{<caller-hash>}:call:<platform>:<id>:log  list  the live call's transcript TTL call_ttl
    cm:{<caller-hash>}:call:<platform>:<id>:ev   hash  event key -> answer ("" while pending) TTL call_ttl
                                                       (`greeting`: one picked after a rehydration)
    cm:callref:<platform>:<id>                   str   "<bot>|<caller-hash>", "ended|<bot>|<hash>" after
    cm:live:{s<nn>}                              zset  live calls by last known activity (sweeper)
    cm:pending:{s<nn>}                           zset  ended calls waiting for Postgres, by due time
    cm:live:{s<nn>}:ready                        str   the readiness probe's token      TTL 10 s
    cm:quarantine                                hash  pending member -> {reason, since, refusals}
    cm:lock:<name>                               str   a lock's holder token, with an expiry

The two schedules are split into SCHEDULE_BUCKETS buckets each, a call's bucket chosen by its caller
hash: on a Redis Cluster their hash tags spread them over the shards, so that no one shard is on every
ringing's and every hangup's path. The sweeper and the flusher walk every bucket. (Before the buckets the
schedules were the single keys `cm:live` and `cm:pending`; `legacy_live` and `legacy_pending` name them
so that an upgraded instance moves what they still hold into the buckets, see Schedules.adopt_legacy.)

The callref is the only key a webhook can find by call id alone; it holds no phone number of a caller.

A call kept `apart` from its caller's memory (an unverified call under the `verified` disclosure, see
core/trust.py) lives under its caller's hash like any other, so that erasure and the schedules find it,
but its scripts read and write its own state and transcript only: never the caller's meta, turns or
sums, until scripts/verify.lua joins it to them.

A call that Postgres refuses (its own data, not an outage) counts the refusals in its state hash
(`refusals`, and the last `refused` reason). After CALLMEMORY_ARCHIVE_REFUSALS_MAX of them it leaves
`cm:pending` for `cm:quarantine`, so that the flusher no longer tries it; its state and transcript keys
stay in place without an expiry (as for any call waiting for the archive) until `callmemory quarantine
retry` archives it or an erasure deletes it. `callmemory quarantine list|export` read them.
"""

from __future__ import annotations

from typing import Final
from zlib import crc32

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId

ENDED: Final = "ended"
# Fixed, not a setting: a call is found in the bucket its caller hash names, and another count would
# look for every call already scheduled in the wrong bucket. Sixteen spread well over a few shards and
# cost the sweeper and the flusher one command per bucket per pass, all in one round trip.
SCHEDULE_BUCKETS: Final = 16


def is_ended(ref: str | bytes) -> bool:
    """Whether a callref is the tombstone of an ended call."""
    return str(ref) == ENDED or str(ref).startswith(f"{ENDED}|")


class Keys:
    """The names of the keys above, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        # Instance-wide schedules, in buckets; each bucket is touched only by single-key commands and
        # scripts. Their members name the call and its caller.
        self.live_buckets = tuple(f"{prefix}:live:{{s{n:02d}}}" for n in range(SCHEDULE_BUCKETS))
        self.pending_buckets = tuple(f"{prefix}:pending:{{s{n:02d}}}" for n in range(SCHEDULE_BUCKETS))
        self.legacy_live = f"{prefix}:live"
        self.legacy_pending = f"{prefix}:pending"
        self.quarantine = f"{prefix}:quarantine"

    def live(self, caller: CallerId) -> str:
        """The bucket of the live-call schedule that holds the caller's calls."""
        return self.live_buckets[_bucket(caller)]

    def pending(self, caller: CallerId) -> str:
        """The bucket of the pending-archive schedule that holds the caller's calls."""
        return self.pending_buckets[_bucket(caller)]

    def caller(self, caller: CallerId, suffix: str) -> str:
        return f"{self._prefix}:{{{caller.caller_hash}}}:{suffix}"

    def meta(self, caller: CallerId) -> str:
        return self.caller(caller, "meta")

    def turns(self, caller: CallerId) -> str:
        return self.caller(caller, "turns")

    def sums(self, caller: CallerId) -> str:
        return self.caller(caller, "sums")

    def memory(self, caller: CallerId) -> tuple[str, str, str]:
        """Every key of the caller's memory (not of their calls)."""
        return self.meta(caller), self.turns(caller), self.sums(caller)

    def erased(self, caller: CallerId) -> str:
        return self.caller(caller, "erased")

    def calls_prefix(self, caller: CallerId) -> str:
        return self.caller(caller, "call:")

    def state(self, call: CallRef, caller: CallerId) -> str:
        return self.caller(caller, f"call:{call.platform}:{call.call_id}")

    def log(self, call: CallRef, caller: CallerId) -> str:
        return f"{self.state(call, caller)}:log"

    def events(self, call: CallRef, caller: CallerId) -> str:
        return f"{self.state(call, caller)}:ev"

    def callref(self, call: CallRef) -> str:
        return f"{self._prefix}:callref:{call.platform}:{call.call_id}"

    def lock(self, name: str) -> str:
        return f"{self._prefix}:lock:{name}"


def _bucket(caller: CallerId) -> int:
    return crc32(caller.caller_hash.encode()) % SCHEDULE_BUCKETS


def member(call: CallRef, caller: CallerId) -> str:
    """A call's member in the schedules."""
    # The call id goes last: it is the only part that may itself contain "|".
    return f"{call.platform}|{caller.bot_number}|{caller.caller_hash}|{call.call_id}"


def parse_member(member: str) -> tuple[CallRef, CallerId]:
    platform, bot, caller_hash, call_id = member.split("|", 3)
    return CallRef(platform, call_id), CallerId(bot_number=bot, caller_hash=caller_hash)
