"""Hot memory in Redis, as one object: the parts below, each in its own module.

The key layout is described in keys.py; the scripts are in scripts/, run through lua.py.
"""

from __future__ import annotations

from callmemory.memory.hot.callers import Callers
from callmemory.memory.hot.calls import LiveCalls, Started
from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.erasure import Erasure, HotErasure
from callmemory.memory.hot.keys import Keys
from callmemory.memory.hot.locks import Locks
from callmemory.memory.hot.schedules import Probe, QuarantinedCall, Schedules
from callmemory.memory.hot.settings import HotSettings
from callmemory.memory.hot.transcript import Transcripts

__all__ = ["HotErasure", "HotSettings", "HotStore", "QuarantinedCall", "Started"]


class HotStore:
    """Redis operations for caller memory and live calls. Knows nothing of LLMs or webhooks.

    Its methods are the parts' own, so that callers need not know which part does what.
    """

    def __init__(self, redis: HotRedis, settings: HotSettings) -> None:
        self._redis = redis
        keys = Keys(settings.prefix)
        callers = Callers(redis, keys, settings)
        self.read_caller = callers.read_caller
        self.hydrate = callers.hydrate
        self.mark_partial = callers.mark_partial
        self.remember_summary = callers.remember_summary
        self.forget_caller = callers.forget_caller

        calls = LiveCalls(redis, keys, settings)
        self.start_call = calls.start_call
        self.greeting_for = calls.greeting_for
        self.verify = calls.verify
        self.read_for_call = calls.read_for_call
        self.known_caller = calls.known_caller
        self.locate_call = calls.locate_call
        self.ended_caller = calls.ended_caller
        self.event_answer = calls.event_answer
        self.event_seen = calls.event_seen

        transcripts = Transcripts(redis, keys, settings, calls)
        self.append_turn = transcripts.append_turn
        self.append_reply = transcripts.append_reply
        self.begin_end = transcripts.begin_end
        self.end_if_idle = transcripts.end_if_idle
        self.set_call_summary = transcripts.set_call_summary
        self.finish_call = transcripts.finish_call

        schedules = Schedules(redis, keys, settings)
        self.idle_calls = schedules.idle_calls
        self.forget_live = schedules.forget_live
        self.mark_pending = schedules.mark_pending
        self.claim_pending = schedules.claim_pending
        self.forget_pending = schedules.forget_pending
        self.pending_count = schedules.pending_count
        self.note_refusal = schedules.note_refusal
        self.quarantined = schedules.quarantined
        self.quarantine_count = schedules.quarantine_count
        self.release_quarantined = schedules.release_quarantined

        locks = Locks(redis, keys, settings)
        self.acquire = locks.acquire
        self.release = locks.release

        self.erase = Erasure(redis, keys, settings).erase
        self._probe = Probe(redis, keys, settings)

    async def ping(self) -> bool:
        """Whether Redis runs hot memory's commands: not a PING, which any node answers, but a script
        that writes and reads back, on the shard of every schedule bucket (see scripts/probe.lua)."""
        return await self._probe()
