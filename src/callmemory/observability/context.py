"""Who a log line is about: the request, the call and the caller (hash prefix), as context variables.

Context variables rather than arguments: they follow a request through every await into the core and
the stores without each function passing them on, and each request (an asyncio task) has its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

# Enough of the caller hash to tell callers apart in logs; the whole hash is a stable pseudonym.
CALLER_PREFIX_CHARS: Final = 12

request_id: ContextVar[str | None] = ContextVar("callmemory_request_id", default=None)
call_id: ContextVar[str | None] = ContextVar("callmemory_call_id", default=None)
caller: ContextVar[str | None] = ContextVar("callmemory_caller", default=None)


def bind_call(value: str) -> None:
    call_id.set(value)


def bind_caller(caller_hash: str) -> None:
    caller.set(caller_hash[:CALLER_PREFIX_CHARS])


@contextmanager
def about_call(value: str) -> Iterator[None]:
    """The call of a background job's lines, for the job only (a worker's task outlives its jobs)."""
    token = call_id.set(value)
    try:
        yield
    finally:
        call_id.reset(token)


def current() -> dict[str, str]:
    """The identifiers known here, for a log line; absent ones are left out."""
    found = {"request_id": request_id.get(), "call_id": call_id.get(), "caller": caller.get()}
    return {key: value for key, value in found.items() if value is not None}
