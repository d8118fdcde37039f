"""A deadline for a Postgres operation that does not wait for the operation to clean up after itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

# Operations past their deadline, still closing their connection: referenced until they finish, or the
# event loop could drop them halfway.
_closing: set[asyncio.Task[object]] = set()


async def within(seconds: float, operation: Awaitable[T]) -> T:
    """`operation`'s result, or TimeoutError once `seconds` have passed.

    Not `asyncio.timeout`: a connection whose query is cancelled is closed by SQLAlchemy, gracefully,
    for up to 2 s more (asyncpg's close(timeout=2), shielded from the cancellation), and against a
    Postgres that does not answer those 2 s are always spent. Here the caller gets its answer at the
    deadline and the cancelled operation finishes closing in the background.
    """
    task: asyncio.Task[T] = asyncio.ensure_future(operation)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if task in done:
        return task.result()
    _abandon(task)
    raise TimeoutError(f"Postgres did not answer within {seconds:g} s")


def _abandon(task: asyncio.Task[T]) -> None:
    task.cancel()
    _closing.add(task)
    task.add_done_callback(_closed)


def _closed(task: asyncio.Task[T]) -> None:
    _closing.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: the caller has long been told TimeoutError
