"""Summaries give way to live answers on an LLM endpoint they share.

A server on CPU (llama.cpp) answers one request after another, and a client's timeout does not stop a
generation there: a summary started just before a caller speaks makes the caller wait for all of it,
past the live answer's deadline. So while summaries share the live answers' endpoint, each process
answering callers notes in Redis that it has answers in flight (the summary worker is another
process), and a summary starts only when no process has, nor had within the quiet time. A summary
already running is not stopped: the quiet time is the margin.

One sorted set per deployment, a member per answering process, scored with the deadline of its newest
answer in flight, so that the member of a process that died stops counting by itself. A process writes
its member when its first answer begins and removes it shortly after its last one ends: a process
answering steadily writes about once per refresh, not twice per answer (those two round trips per
speech turn were a tenth of the service's CPU under load).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence

from callmemory.conversation.prompt import Message
from callmemory.conversation.responder import Answer, Responder
from callmemory.memory.hot.client import HOT_STORE_ERRORS, HotRedis
from callmemory.observability.logs import describe_error

log = logging.getLogger(__name__)

_POLL_S = 0.2


class LiveAnswers:
    """Live answers in flight on the shared endpoint, as Redis sees them: the summary worker reads
    them; a process answering callers keeps its own member up to date (began, ended)."""

    def __init__(
        self,
        redis: HotRedis,
        *,
        prefix: str,
        answer_timeout_s: float,
        quiet_s: float,
        refresh_s: float = 10.0,
        linger_s: float = 0.5,
    ) -> None:
        self._redis = redis
        self._key = f"{prefix}:llm:live"
        self._answer_timeout_s = answer_timeout_s
        self._quiet_s = quiet_s
        # The member is scored `refresh_s` past its newest answer's deadline and rewritten only when an
        # answer begins that it would not cover: under steady answering, a write every `refresh_s`. The
        # price: the member of a process that died keeps summaries waiting that much longer.
        self._refresh_s = refresh_s
        # It stays `linger_s` after the process's last answer ends, because a call's next turn often
        # follows: a short pause costs no two writes. Summaries start that much later, which only
        # favours callers.
        self._linger_s = linger_s
        self._member = uuid.uuid4().hex  # this process's
        self._in_flight = 0
        self._wanted = 0.0  # the score the member should have; 0: no member
        self._written = 0.0  # the score Redis was last told
        self._writer: asyncio.Task[None] | None = None
        self._removal: asyncio.TimerHandle | None = None

    def began(self) -> None:
        """An answer of this process is in flight from now, until its deadline at most."""
        self._in_flight += 1
        self._keep()
        deadline = time.time() + self._answer_timeout_s + 1
        if self._wanted < deadline:
            self._want(deadline + self._refresh_s)

    def ended(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._wanted:
            self._removal = asyncio.get_running_loop().call_later(self._linger_s, self._want, 0.0)

    async def settle(self) -> None:
        """Remove this process's member if no answer is in flight, and wait for Redis to be told (before
        it closes)."""
        self._keep()
        if self._in_flight == 0 and self._wanted:
            self._want(0.0)
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    def _keep(self) -> None:
        """Call off the member's removal, if one is waiting out the linger."""
        if self._removal is not None:
            self._removal.cancel()
            self._removal = None

    def _want(self, score: float) -> None:
        self._removal = None  # when called by the removal itself
        self._wanted = score
        # One writer at a time, which writes the latest wish last: the notes cannot overtake each other.
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._written != self._wanted:
            score = self._wanted
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    if score:
                        pipe.zadd(self._key, {self._member: score})
                        # No key outlives the answers (an empty sorted set is no key; a lost removal
                        # is cleaned by busy()).
                        pipe.expire(self._key, int(self._answer_timeout_s + self._refresh_s) + 60)
                    else:
                        pipe.zrem(self._key, self._member)
                    await pipe.execute()
            except HOT_STORE_ERRORS as exc:
                # Only the summaries' courtesy is lost; the caller's answer goes on. The next answer that
                # begins writes the member again.
                log.debug("could not note live answers in Redis: %s", describe_error(exc))
                self._wanted = self._written = 0.0
                return
            self._written = score

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
    """A responder whose answers are noted as live on the shared endpoint. The note is sent beside the
    LLM request, not before it, so that a caller waits for no Redis round trip."""

    def __init__(self, inner: Responder, live: LiveAnswers) -> None:
        self._inner = inner
        self._live = live

    async def answer(self, messages: Sequence[Message]) -> Answer:
        self._live.began()
        try:
            return await self._inner.answer(messages)
        finally:
            self._live.ended()

    async def settle(self) -> None:
        """Wait for the note still being sent (before Redis closes)."""
        await self._live.settle()
