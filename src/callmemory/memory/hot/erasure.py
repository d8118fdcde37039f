"""A caller's erasure from Redis: every key of theirs, live calls included, and a tombstone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId
from callmemory.memory.hot.client import HotRedis, keys_matching
from callmemory.memory.hot.codec import ms
from callmemory.memory.hot.keys import ENDED, Keys, member
from callmemory.memory.hot.lua import Invocation, Pipe, Script, pipelined
from callmemory.memory.hot.settings import HotSettings


@dataclass(frozen=True, slots=True)
class HotErasure:
    keys: int  # keys deleted
    live_calls: int  # calls in progress that were cut off (their late events are refused)


class _Erase(Script):
    name = "erase"

    def __call__(self, tombstone: str, keys: Sequence[str], *, erased_at: datetime) -> Invocation:
        return self.invoke([tombstone, *keys], [ms(erased_at), self._s.call_ttl_s])


class Erasure:
    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._s = settings
        self._erase = _Erase(redis, keys, settings)

    async def erase(
        self, caller: CallerId, erased_at: datetime, archived_calls: Sequence[CallRef] = ()
    ) -> HotErasure:
        """Delete every key of the caller, live calls included, and leave a tombstone for a while.

        The ended-call markers of `archived_calls` name the caller (for replaying answers to redelivered
        events); they are cut back to a bare "ended".
        """
        tombstone = self._keys.erased(caller)
        calls_prefix = self._keys.calls_prefix(caller)
        # The braces of the hash tag are no glob characters: this matches exactly this caller's keys.
        found = {
            key
            async for key in keys_matching(self._redis, self._keys.caller(caller, "*"))
            if key != tombstone
        }
        found |= set(self._keys.memory(caller))
        live = [
            CallRef(*k.removeprefix(calls_prefix).split(":", 1))
            for k in found
            if k.startswith(calls_prefix) and not k.endswith((":log", ":ev"))
        ]
        erase = self._erase(tombstone, sorted(found), erased_at=erased_at)
        ttl = self._s.call_ttl_s

        def end_calls(pipe: Pipe) -> None:
            for call in live:
                # Their late events now meet an ended call, and neither sweeper nor flusher looks for them.
                pipe.set(self._keys.callref(call), ENDED, ex=ttl)
            for call in archived_calls:
                pipe.set(self._keys.callref(call), ENDED, xx=True, keepttl=True)

        def unschedule(pipe: Pipe) -> None:
            for call in live:
                pipe.zrem(self._keys.live(caller), member(call, caller))
                pipe.zrem(self._keys.pending(caller), member(call, caller))
                pipe.hdel(self._keys.quarantine, member(call, caller))

        # The calls ended before their keys go: a retry after a failure part-way finds the keys that are
        # left, and so the calls, again; schedule entries whose keys are gone are dropped by the walks.
        replies = await pipelined(self._redis, end_calls, erase.queue, unschedule, script=self._erase)
        deleted = replies[len(live) + len(archived_calls)]
        return HotErasure(keys=int(deleted), live_calls=len(live))
