"""The state VoIPBin's protocol forces on us, in Redis: links between its ids, redeliveries seen, and
events that arrived before the event they depend on. A managed AI's messages are not kept here: they go
into the live call as they come (see bridge.py), where the idle sweeper finds them if the hangup is lost.

    cm:vb:{c:<call-id>}:call       hash  bot, caller (hash), flow (activeflow id), ended,   TTL call_ttl
                                         spoken (where the latest-said caller turn was said)
    cm:vb:{c:<call-id>}:buf        zset  managed-AI turns by when spoken, as the version    TTL call_ttl
                                         before this one kept them until the hangup: only
                                         drained now (a call in progress across an upgrade)
    cm:vb:{<kind>:<id>}:link       str   call id of a transcribe (kind tr) or activeflow (af)
    cm:vb:{<kind>:<id>}:held       list  raw events waiting for that link
    cm:vb:seen:<type>:<id>:<tm_update>   str   pending | done: a redelivery's dedup key

Keys used together by one script share a hash tag. No caller phone number is stored: only the hash.
"""

from __future__ import annotations

from typing import Final, Literal

from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.lua import LuaScript

LinkKind = Literal["tr", "af"]


class _Script(LuaScript):
    package = "callmemory.platforms.voipbin"  # its scripts/*.lua, one per wrapper below


class _Link(_Script):
    name = "link"

    async def __call__(self, *, link: str, held: str, call_id: str, ttl_s: int) -> list[str]:
        return [str(raw) for raw in await self.run([link, held], [call_id, ttl_s])]


class _ResolveOrHold(_Script):
    name = "resolve_or_hold"

    async def __call__(self, *, link: str, held: str, raw: str, ttl_s: int) -> str | None:
        call = await self.run([link, held], [raw, ttl_s])
        return None if call is None else str(call)


class _Seal(_Script):
    name = "seal"

    async def __call__(self, *, call: str, buffer: str, ttl_s: int) -> list[str]:
        return [str(turn) for turn in await self.run([call, buffer], [ttl_s])]


class _NoteSpoken(_Script):
    name = "note_spoken"

    async def __call__(self, *, call: str, spoken: str, ttl_s: int) -> bool:
        return bool(await self.run([call], [spoken, ttl_s]))


# Long enough for one event's processing (an LLM answer is not part of it); a crash mid-way frees the
# key for VoIPBin's retry.
_PENDING_TTL_S: Final = 30


class VoipbinState:
    def __init__(self, redis: HotRedis, *, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._p = f"{prefix}:vb"
        self._ttl = ttl_s
        self._link = _Link(redis)
        self._resolve = _ResolveOrHold(redis)
        self._seal = _Seal(redis)
        self._note_spoken = _NoteSpoken(redis)

    def _call_key(self, call_id: str, suffix: str) -> str:
        return f"{self._p}:{{c:{call_id}}}:{suffix}"

    def _link_keys(self, kind: LinkKind, link_id: str) -> tuple[str, str]:
        return f"{self._p}:{{{kind}:{link_id}}}:link", f"{self._p}:{{{kind}:{link_id}}}:held"

    # -- redeliveries ----------------------------------------------------------------------------
    async def claim(self, key: str) -> bool:
        """True for the first delivery of an event; False for a redelivery (or one being processed)."""
        return bool(await self._redis.set(f"{self._p}:seen:{key}", "pending", nx=True, ex=_PENDING_TTL_S))

    async def confirm(self, key: str) -> None:
        await self._redis.set(f"{self._p}:seen:{key}", "done", ex=self._ttl)

    async def release(self, key: str) -> None:
        """The event could not be stored: let VoIPBin's retry in."""
        await self._redis.delete(f"{self._p}:seen:{key}")

    # -- calls -----------------------------------------------------------------------------------
    async def remember_call(self, call_id: str, **fields: str) -> None:
        key = self._call_key(call_id, "call")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, items=[part for pair in fields.items() for part in pair])
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def call_field(self, call_id: str, name: str) -> str | None:
        value = await self._redis.hget(self._call_key(call_id, "call"), name)
        return None if value is None else str(value)

    async def note_spoken(self, call_id: str, spoken: str | None) -> bool:
        """Note a caller turn said at `spoken`; True if none said later has been noted (it is to be
        answered). Without a key there is no order to go by but arrival: every turn is answered."""
        if spoken is None:
            return True
        return await self._note_spoken(call=self._call_key(call_id, "call"), spoken=spoken, ttl_s=self._ttl)

    async def still_latest(self, call_id: str, spoken: str | None) -> bool:
        """Whether an answer to the turn said at `spoken` may still be spoken: the call has not ended,
        and no turn said later has arrived since."""
        latest, ended = await self._redis.hmget(self._call_key(call_id, "call"), ["spoken", "ended"])
        return ended != "1" and (spoken is None or latest is None or str(latest) == spoken)

    # -- links and held events -------------------------------------------------------------------
    async def link(self, kind: LinkKind, link_id: str, call_id: str) -> list[str]:
        """Record which call `link_id` belongs to; returns the raw events that waited for it."""
        link, held = self._link_keys(kind, link_id)
        return await self._link(link=link, held=held, call_id=call_id, ttl_s=self._ttl)

    async def resolve_or_hold(self, kind: LinkKind, link_id: str, raw: str) -> str | None:
        """The call `link_id` belongs to; None when unknown yet, and then `raw` is held for the link."""
        link, held = self._link_keys(kind, link_id)
        return await self._resolve(link=link, held=held, raw=raw, ttl_s=self._ttl)

    async def hold_again(self, kind: LinkKind, link_id: str, raws: list[str]) -> None:
        """Put back held events that could not be applied, for the linking event's retry."""
        _, held = self._link_keys(kind, link_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(held, *reversed(raws))
            pipe.expire(held, self._ttl)
            await pipe.execute()

    # -- the end of a call ------------------------------------------------------------------------
    async def seal(self, call_id: str) -> list[str]:
        """Mark the call ended (no answer is spoken into it any more) and return the managed-AI turns an
        earlier version buffered for it, in spoken order."""
        return await self._seal(
            call=self._call_key(call_id, "call"), buffer=self._call_key(call_id, "buf"), ttl_s=self._ttl
        )

    async def unbuffer(self, call_id: str, turn: str) -> None:
        await self._redis.zrem(self._call_key(call_id, "buf"), turn)
