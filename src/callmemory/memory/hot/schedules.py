"""The instance-wide schedules: live calls for the sweeper, archives waiting for Postgres for the flusher,
and the quarantine of calls Postgres keeps refusing, set aside so that they hold back no other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId
from callmemory.memory.hot.codec import from_ms, ms
from callmemory.memory.hot.keys import Keys, member, parse_member
from callmemory.memory.hot.lua import Invocation, Script
from callmemory.memory.hot.settings import HotSettings


@dataclass(frozen=True, slots=True)
class QuarantinedCall:
    call: CallRef
    caller: CallerId
    reason: str  # the last refusal's
    since: datetime
    refusals: int


class _ClaimDue(Script):
    name = "claim_due"

    def __call__(self, schedule: str, *, now: datetime, lease_until: datetime, limit: int) -> Invocation:
        return self.invoke([schedule], [ms(now), ms(lease_until), limit])


class _NoteRefusal(Script):
    name = "note_refusal"

    def __call__(self, call: CallRef, caller: CallerId, reason: str) -> Invocation:
        return self.invoke([self._keys.state(call, caller), self._keys.log(call, caller)], [reason])


class Schedules:
    def __init__(self, redis: Redis, keys: Keys, settings: HotSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._claim_due = _ClaimDue(redis, keys, settings)
        self._note_refusal = _NoteRefusal(redis, keys, settings)

    # -- live calls, for the sweeper ---------------------------------------------------------------
    async def idle_calls(self, idle_since: datetime, limit: int) -> list[tuple[CallRef, CallerId]]:
        """Live calls whose last known activity is before `idle_since`, oldest first."""
        members = await self._redis.zrangebyscore(self._keys.live, "-inf", ms(idle_since), start=0, num=limit)
        return [parse_member(str(m)) for m in members]

    async def forget_live(self, call: CallRef, caller: CallerId) -> None:
        await self._redis.zrem(self._keys.live, member(call, caller))

    # -- archives waiting for Postgres, for the flusher --------------------------------------------
    async def mark_pending(self, call: CallRef, caller: CallerId, due: datetime) -> None:
        """The call is frozen but not archived: the flusher takes it from here.

        Its state stops expiring: it is the only copy of the call until Postgres has it, however long
        the outage lasts. Archiving deletes it.
        """
        scheduled = member(call, caller)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.persist(self._keys.state(call, caller))
            pipe.persist(self._keys.log(call, caller))
            pipe.zadd(self._keys.pending, {scheduled: ms(due)})
            pipe.zrem(self._keys.live, scheduled)
            await pipe.execute()

    async def claim_pending(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[CallRef, CallerId]]:
        claim = self._claim_due(self._keys.pending, now=now, lease_until=lease_until, limit=limit)
        return [parse_member(str(m)) for m in await claim.run()]

    async def forget_pending(self, call: CallRef, caller: CallerId) -> None:
        await self._redis.zrem(self._keys.pending, member(call, caller))

    async def pending_count(self) -> int:
        return int(await self._redis.zcard(self._keys.pending))

    # -- quarantine ----------------------------------------------------------------------------------
    async def note_refusal(
        self, call: CallRef, caller: CallerId, reason: str, *, at: datetime, quarantine_after: int
    ) -> int:
        """Count a refusal of the frozen call at `at`: retried from then on, or quarantined once refused
        `quarantine_after` times. How many refusals so far; 0 when the call's state is gone."""
        refusals = int(await self._note_refusal(call, caller, reason).run())
        if refusals == 0:
            return 0
        scheduled = member(call, caller)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self._keys.live, scheduled)
            if refusals >= quarantine_after:
                entry = {"reason": reason, "since": ms(at), "refusals": refusals}
                # Into the quarantine before out of the schedule: a crash in between leaves the call in
                # both, and the flusher's next refusal files it again, rather than in neither.
                pipe.hset(self._keys.quarantine, scheduled, json.dumps(entry))
                pipe.zrem(self._keys.pending, scheduled)
            else:
                pipe.zadd(self._keys.pending, {scheduled: ms(at)})
            await pipe.execute()
        return refusals

    async def quarantined(self) -> list[QuarantinedCall]:
        entries = await self._redis.hgetall(self._keys.quarantine)
        found = []
        for scheduled, raw in sorted(entries.items()):
            call, caller = parse_member(str(scheduled))
            data = json.loads(raw)
            found.append(
                QuarantinedCall(
                    call=call,
                    caller=caller,
                    reason=str(data["reason"]),
                    since=from_ms(data["since"]),
                    refusals=int(data["refusals"]),
                )
            )
        return found

    async def quarantine_count(self) -> int:
        return int(await self._redis.hlen(self._keys.quarantine))

    async def release_quarantined(self, call: CallRef, caller: CallerId) -> None:
        """Out of the quarantine, with its count of refusals back at zero: the next refusals count anew."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self._keys.quarantine, member(call, caller))
            pipe.hdel(self._keys.state(call, caller), "refusals")
            await pipe.execute()
