"""A caller's topic: what they called about, in their own words, for the next call's greeting.

Picked without an LLM so the greeting costs the caller no waiting: the first thing the caller said that
is more than a pleasantry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from callmemory.core.events import Role
from callmemory.memory.types import Turn

_PLEASANTRY = re.compile(
    r"^(?:(?:hi|hello|hey|yes|yeah|yep|no|ok|okay|um+|uh+|so|well|good (?:morning|afternoon|evening))"
    r"\b[\s,.!?]*)+",
    re.IGNORECASE,
)
_MIN_WORDS = 3
_MAX_CHARS = 90


def _shorten(text: str) -> str:
    if len(text) > _MAX_CHARS:
        text = text[:_MAX_CHARS].rsplit(" ", 1)[0]
    return text.rstrip(" ,;:.!?-")


def topic_of(turns: Iterable[Turn]) -> str | None:
    first: str | None = None
    for turn in turns:
        if turn.role is not Role.CALLER:
            continue
        said = _PLEASANTRY.sub("", turn.text.strip()).strip()
        if not said:
            continue
        if len(said.split()) >= _MIN_WORDS:
            return _shorten(said)
        first = first or said
    return _shorten(first) if first else None
