"""A caller's hot memory: read, loaded from the archive (hydrated), marked partial, given a summary."""

from __future__ import annotations

import json

from callmemory.core.identity import CallerId
from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.codec import (
    decode_summary,
    decode_turn,
    encode_profile,
    encode_summary,
    encode_turn,
    ms,
)
from callmemory.memory.hot.keys import Keys
from callmemory.memory.hot.lua import Invocation, Script
from callmemory.memory.hot.settings import HotSettings
from callmemory.memory.profile import clean_profile
from callmemory.memory.types import CallerMemory, CallSummary


class _Hydrate(Script):
    name = "hydrate"

    def __call__(self, memory: CallerMemory) -> Invocation:
        recent = memory.recent[-self._s.recent_turns :]
        sums = memory.call_summaries[-self._s.call_summaries :] if self._s.call_summaries else ()
        return self.invoke(
            [*self._keys.memory(memory.caller), self._keys.erased(memory.caller)],
            [
                self._s.memory_ttl_s,
                memory.call_count,
                memory.last_topic or "",
                ms(recent[-1].at) if recent else 0,
                memory.summary or "",
                encode_profile(memory.profile),
                memory.greeting or "",
                len(sums),
                self._s.recent_turns,
                *(encode_summary(s) for s in sums),
                *(encode_turn(t) for t in recent),
            ],
        )


class _MarkPartial(Script):
    name = "mark_partial"

    def __call__(self, caller: CallerId) -> Invocation:
        return self.invoke([self._keys.meta(caller)], [self._s.memory_ttl_s])


class _RememberSummary(Script):
    name = "remember_summary"

    def __call__(self, memory: CallerMemory, latest: CallSummary | None) -> Invocation:
        caller = memory.caller
        return self.invoke(
            [self._keys.meta(caller), self._keys.sums(caller)],
            [
                memory.summary or "",
                encode_profile(memory.profile),
                memory.greeting or "",
                encode_summary(latest) if latest and self._s.call_summaries else "",
                self._s.call_summaries,
                self._s.memory_ttl_s,
            ],
        )


class Callers:
    """Redis operations on callers' memory."""

    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._hydrate = _Hydrate(redis, keys, settings)
        self._mark_partial = _MarkPartial(redis, keys, settings)
        self._remember_summary = _RememberSummary(redis, keys, settings)

    async def read_caller(self, caller: CallerId) -> CallerMemory | None:
        """The caller's hot memory, or None when Redis has none (expired, flushed, never seen)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            meta_key, turns_key, sums_key = self._keys.memory(caller)
            pipe.hgetall(meta_key)
            pipe.lrange(turns_key, 0, -1)
            pipe.lrange(sums_key, 0, -1)
            meta, turns, sums = await pipe.execute()
        return complete_memory(caller, meta, turns, sums)

    async def hydrate(self, memory: CallerMemory) -> bool:
        """Store memory loaded from the archive; False when complete hot memory appeared meanwhile."""
        return bool(await self._hydrate(memory).run())

    async def mark_partial(self, caller: CallerId) -> None:
        """The caller's call begins without their archived memory: the next read rehydrates it."""
        await self._mark_partial(caller).run()

    async def remember_summary(self, memory: CallerMemory, latest: CallSummary | None) -> bool:
        """Store a freshly summarised caller's long-term memory; False when they have no hot memory."""
        return bool(await self._remember_summary(memory, latest).run())

    async def forget_caller(self, caller: CallerId) -> None:
        """Drop the caller's hot memory, so that the next read rehydrates it from the archive."""
        await self._redis.delete(*self._keys.memory(caller))


def complete_memory(
    caller: CallerId, meta: dict[str, str], turns: list[str], sums: list[str]
) -> CallerMemory | None:
    """The caller's memory as read; None when there is none, or only a part (see mark_partial)."""
    if not meta or meta.get("partial") == "1":
        return None
    return memory_of(caller, meta, turns, sums)


def memory_of(caller: CallerId, meta: dict[str, str], turns: list[str], sums: list[str]) -> CallerMemory:
    return CallerMemory(
        caller=caller,
        call_count=int(meta.get("calls", 0)),
        last_topic=meta.get("topic") or None,
        recent=tuple(decode_turn(t) for t in turns),
        summary=meta.get("summary") or None,
        profile=clean_profile(json.loads(meta.get("profile") or "{}")),
        greeting=meta.get("greeting") or None,
        call_summaries=tuple(decode_summary(s) for s in sums),
        apart=meta.get("apart") == "1",
    )
