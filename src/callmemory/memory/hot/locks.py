"""Locks that one instance holds at a time (the sweeper's, the flusher's), each with an expiry."""

from __future__ import annotations

import secrets

from callmemory.memory.hot.client import HotRedis
from callmemory.memory.hot.keys import Keys
from callmemory.memory.hot.lua import Invocation, Script
from callmemory.memory.hot.settings import HotSettings


class _ReleaseLock(Script):
    name = "release_lock"

    def __call__(self, name: str, token: str) -> Invocation:
        return self.invoke([self._keys.lock(name)], [token])


class Locks:
    def __init__(self, redis: HotRedis, keys: Keys, settings: HotSettings) -> None:
        self._redis = redis
        self._keys = keys
        self._release = _ReleaseLock(redis, keys, settings)

    async def acquire(self, name: str, ttl_ms: int) -> str | None:
        """A lock held until released or `ttl_ms` passes; the token to release it, or None if taken."""
        token = secrets.token_hex(8)
        taken = await self._redis.set(self._keys.lock(name), token, nx=True, px=ttl_ms)
        return token if taken else None

    async def release(self, name: str, token: str) -> None:
        # Only by its holder: a lock that expired and was taken by another instance stays theirs.
        await self._release(name, token).run()
