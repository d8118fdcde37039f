"""The instance-wide schedules: live calls for the sweeper, archives waiting for Postgres for the flusher,
and the quarantine of calls Postgres keeps refusing, set aside so that they hold back no other."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId
from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.codec import from_ms, ms
from callmemory.memory.hot.keys import Keys, member, parse_member
from callmemory.memory.hot.lua import Invocation, Pipe, Script, in_order, pipelined
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


class Probe(Script):
    """One write-and-read script on each bucket's shard: what readiness takes as proof that Redis works."""

    name = "probe"

    async def __call__(self) -> bool:
        token = secrets.token_hex(4)
        probes = [self.invoke([f"{bucket}:ready"], [token]) for bucket in self._keys.live_buckets]

        def commands(pipe: Pipe) -> None:
            for probe in probes:
                probe.queue(pipe)

        return all(echo == token for echo in await pipelined(self._redis, commands, script=self))


class Schedules:
    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._claim_due = _ClaimDue(redis, keys, settings)
        self._note_refusal = _NoteRefusal(redis, keys, settings)

    # -- live calls, for the sweeper ---------------------------------------------------------------
    async def idle_calls(self, idle_since: datetime, limit: int) -> list[tuple[CallRef, CallerId]]:
        """Live calls whose last known activity is before `idle_since`, oldest first, from every bucket."""
        await self._adopt_legacy(self._keys.legacy_live, self._keys.live)
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in self._keys.live_buckets:
                pipe.zrangebyscore(bucket, "-inf", ms(idle_since), start=0, num=limit, withscores=True)
            found = [entry for entries in await pipe.execute() for entry in entries]
        return [parse_member(str(m)) for m, _ in sorted(found, key=lambda entry: entry[1])[:limit]]

    async def forget_live(self, call: CallRef, caller: CallerId) -> None:
        await self._redis.zrem(self._keys.live(caller), member(call, caller))

    # -- archives waiting for Postgres, for the flusher --------------------------------------------
    async def mark_pending(self, call: CallRef, caller: CallerId, due: datetime) -> None:
        """The call is frozen but not archived: the flusher takes it from here.

        Its state stops expiring: it is the only copy of the call until Postgres has it, however long
        the outage lasts. Archiving deletes it.
        """
        scheduled = member(call, caller)

        def keep(pipe: Pipe) -> None:
            pipe.persist(self._keys.state(call, caller))
            pipe.persist(self._keys.log(call, caller))
            pipe.zadd(self._keys.pending(caller), {scheduled: ms(due)})

        def unschedule_live(pipe: Pipe) -> None:
            pipe.zrem(self._keys.live(caller), scheduled)

        # Into the flusher's schedule before out of the sweeper's: a failure in between leaves the call
        # in both (the sweeper then hands it on again), never in neither.
        await in_order(self._redis, keep, unschedule_live)

    async def claim_pending(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[CallRef, CallerId]]:
        """Up to `limit` due archives, leased to this instance until `lease_until`, shared fairly among
        the buckets that have some (one full bucket after an outage must not wait behind empty ones)."""
        await self._adopt_legacy(self._keys.legacy_pending, self._keys.pending)
        buckets = self._keys.pending_buckets
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.zcount(bucket, "-inf", ms(now))
            due = [int(n) for n in await pipe.execute()]
        shares = _share(due, limit)
        if not any(shares):
            return []
        claims = [
            self._claim_due(bucket, now=now, lease_until=lease_until, limit=share)
            for bucket, share in zip(buckets, shares, strict=True)
            if share
        ]

        def claim(pipe: Pipe) -> None:
            for invocation in claims:
                invocation.queue(pipe)

        claimed = await pipelined(self._redis, claim, script=self._claim_due)
        return [parse_member(str(m)) for members in claimed for m in members]

    async def forget_pending(self, call: CallRef, caller: CallerId) -> None:
        await self._redis.zrem(self._keys.pending(caller), member(call, caller))

    async def pending_count(self) -> int:
        """How many calls wait for the archive, over every bucket (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in (*self._keys.pending_buckets, self._keys.legacy_pending):
                pipe.zcard(bucket)
            return sum(int(n) for n in await pipe.execute())

    async def _adopt_legacy(self, legacy: str, bucket_of: Callable[[CallerId], str]) -> None:
        """Move what a schedule from before the buckets still holds into the buckets, scores kept."""
        raw: Any = await self._redis.zrange(legacy, 0, -1, withscores=True)
        entries = [(str(scheduled), float(score)) for scheduled, score in raw]
        if not entries:
            return

        def copy(pipe: Pipe) -> None:
            for scheduled, score in entries:
                _, caller = parse_member(str(scheduled))
                pipe.zadd(bucket_of(caller), {scheduled: score}, nx=True)

        def drop(pipe: Pipe) -> None:
            pipe.zrem(legacy, *(scheduled for scheduled, _ in entries))

        await in_order(self._redis, copy, drop)

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

        def file(pipe: Pipe) -> None:
            if refusals >= quarantine_after:
                entry = {"reason": reason, "since": ms(at), "refusals": refusals}
                pipe.hset(self._keys.quarantine, scheduled, json.dumps(entry))
            else:
                pipe.zadd(self._keys.pending(caller), {scheduled: ms(at)})

        def unschedule(pipe: Pipe) -> None:
            pipe.zrem(self._keys.live(caller), scheduled)
            if refusals >= quarantine_after:
                pipe.zrem(self._keys.pending(caller), scheduled)

        # Filed before taken out of the schedules: a failure in between leaves the call in two places,
        # and the flusher's next refusal files it again, rather than in none.
        await in_order(self._redis, file, unschedule)
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


def _share(due: list[int], limit: int) -> list[int]:
    """`limit` split among buckets with `due` entries each: evenly, what one cannot use going to others."""
    shares = [0] * len(due)
    left = limit
    while left > 0:
        wanting = [n for n, count in enumerate(due) if shares[n] < count]
        if not wanting:
            break
        each = max(1, left // len(wanting))
        for n in wanting:
            take = min(each, due[n] - shares[n], left)
            shares[n] += take
            left -= take
    return shares
