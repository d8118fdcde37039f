"""Waiting for something the service does in the background, without timing it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15.0) -> None:
    """Poll until `check` holds; `within_s` only bounds a hang, it is not a speed requirement."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.05)
