"""Withheld caller IDs: callers who hid their number must not share one memory.

A platform that cannot show the caller's number sends a word instead (`anonymous`, `unknown`,
`restricted`, ...), and some carriers, Twilio among them, turn that word into the digits it spells on a
phone keypad (`+266696687` is ANONYMOUS), which then looks like a number. Taken as a number, every such
caller of a bot would be one caller: each would be greeted with what the last one said.
"""

from __future__ import annotations

import re
from typing import Final

from callmemory.core.events import CallRef

# What carriers and platforms put in place of a hidden number.
_WORDS: Final = ("anonymous", "unknown", "restricted", "unavailable", "private", "withheld", "blocked")
_KEYPAD: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "22233344455566677778889999")
_SPELLED: Final = frozenset(word.translate(_KEYPAD) for word in _WORDS)
_DIALLING_MARKS: Final = re.compile(r"[\s+().-]")


def is_withheld(raw: str | None) -> bool:
    """Whether a platform's caller ID says "no number": one of the words, or the keypad digits it spells.

    A blank caller ID is not one: that is a platform sending nothing, refused like any unusable number.
    """
    text = (raw or "").strip().lower()
    if not text:
        return False
    if any(word in text for word in _WORDS):
        return True
    return _DIALLING_MARKS.sub("", text) in _SPELLED


def withheld_identity(call: CallRef) -> str:
    """What stands for a withheld caller in their caller hash: the call itself, so that each such call
    is a caller of its own. Its turns are still the LLM's context and it is archived, but no later call
    is greeted with it. It is hashed like a number (HMAC with the bot's), so nothing collides with one."""
    return f"withheld:{call.platform}:{call.call_id}"
