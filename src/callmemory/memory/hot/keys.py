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

from typing import Final

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId

ENDED: Final = "ended"


def is_ended(ref: str | bytes) -> bool:
    """Whether a callref is the tombstone of an ended call."""
    return str(ref) == ENDED or str(ref).startswith(f"{ENDED}|")


class Keys:
    """The names of the keys above, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        # Instance-wide schedules. Each is one key, touched only by single-key commands and scripts, so
        # they need no hash tag; their members name the call and its caller.
        self.live = f"{prefix}:live"
        self.pending = f"{prefix}:pending"
        self.quarantine = f"{prefix}:quarantine"

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


def member(call: CallRef, caller: CallerId) -> str:
    """A call's member in the schedules."""
    # The call id goes last: it is the only part that may itself contain "|".
    return f"{call.platform}|{caller.bot_number}|{caller.caller_hash}|{call.call_id}"


def parse_member(member: str) -> tuple[CallRef, CallerId]:
    platform, bot, caller_hash, call_id = member.split("|", 3)
    return CallRef(platform, call_id), CallerId(bot_number=bot, caller_hash=caller_hash)
