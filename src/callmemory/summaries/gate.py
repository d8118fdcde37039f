"""Summaries give way to live answers on an LLM endpoint they share.

A server on CPU (llama.cpp) answers one request after another, and a client's timeout does not stop a
generation there: a summary started just before a caller speaks makes the caller wait for all of it,
past the live answer's deadline. So while summaries share the live answers' endpoint, each live answer
is noted in Redis (the summary worker is another process) and a summary starts only when none is in
flight nor was within the quiet time. A summary already running is not stopped: the quiet time is
the margin.

One sorted set per deployment: a member per live answer in flight, scored with its deadline, so that an
answer whose process died stops counting by itself; a finished answer's member is removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

from callmemory.conversation.prompt import Message
from callmemory.conversation.responder import Answer, Responder
from callmemory.memory.hot.client import HOT_STORE_ERRORS, HotRedis
from callmemory.observability.logs import describe_error

log = logging.getLogger(__name__)

_POLL_S = 0.2


class LiveAnswers:
    """Live answers in flight on the shared endpoint, as Redis sees them."""

    def __init__(self, redis: HotRedis, *, prefix: str, answer_timeout_s: float, quiet_s: float) -> None:
        self._redis = redis
        self._key = f"{prefix}:llm:live"
        self._answer_timeout_s = answer_timeout_s
        self._quiet_s = quiet_s

    async def began(self, token: str) -> None:
        # Counted until its deadline at most: an answer whose process died stops counting by itself.
        await self._note(lambda pipe: pipe.zadd(self._key, {token: time.time() + self._answer_timeout_s + 1}))

    async def ended(self, token: str) -> None:
        # Removed, so that no key outlives the answers (an empty sorted set is no key).
        await self._note(lambda pipe: pipe.zrem(self._key, token))

    async def _note(self, command: Callable[[Pipeline | ClusterPipeline], object]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                command(pipe)
                pipe.expire(self._key, int(self._answer_timeout_s) + 60)
                await pipe.execute()
        except HOT_STORE_ERRORS as exc:
            # Only the summaries' courtesy is lost; the caller's answer goes on.
            log.debug("could not note a live answer in Redis: %s", describe_error(exc))

    async def busy(self) -> bool:
        """Whether a live answer is in flight."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self._key, "-inf", time.time())
            pipe.zcard(self._key)
            _, live = await pipe.execute()
        return bool(live)

    async def wait_quiet(self) -> None:
        """Return when no live answer is in flight, nor was for the quiet time since one was seen; at once
        when Redis cannot say (summaries are not held up by a Redis outage, which the live path has to
        cope with anyway)."""
        try:
            while await self.busy():
                while await self.busy():  # noqa: ASYNC110 - the answers are in another process: polled
                    await asyncio.sleep(_POLL_S)
                await asyncio.sleep(self._quiet_s)  # the caller's next turn often follows soon
        except HOT_STORE_ERRORS as exc:
            log.debug("could not read live answers from Redis: %s", describe_error(exc))


class Announced:
    """A responder whose answers are noted as live on the shared endpoint. The notes are sent beside
    the LLM request, not before it, so that a caller waits for no Redis round trip."""

    def __init__(self, inner: Responder, live: LiveAnswers) -> None:
        self._inner = inner
        self._live = live
        self._notes: set[asyncio.Task[None]] = set()

    async def answer(self, messages: Sequence[Message]) -> Answer:
        token = uuid.uuid4().hex
        began = self._send(self._live.began(token))
        try:
            return await self._inner.answer(messages)
        finally:
            self._send(self._ended(began, token))

    async def _ended(self, began: asyncio.Task[None], token: str) -> None:
        await began  # the end must not be noted before the beginning, or the member would linger
        await self._live.ended(token)

    async def settle(self) -> None:
        """Wait for the notes still being sent (before Redis closes)."""
        await asyncio.gather(*self._notes, return_exceptions=True)

    def _send(self, note: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(note)
        self._notes.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._notes.discard)
        return task
