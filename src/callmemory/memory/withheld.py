"""Withheld caller IDs: callers who hid their number must not share one memory.

A platform that cannot show the caller's number sends a word instead (`anonymous`, `unknown`,
`restricted`, ...), and some carriers, Twilio among them, turn that word into the digits it spells on a
phone keypad (`+266696687` is ANONYMOUS), which then looks like a number. Taken as a number, every such
caller of a bot would be one caller: each would be greeted with what the last one said.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from callmemory.events import CallRef

# What carriers and platforms put in place of a hidden number.
_WORDS: Final = ("anonymous", "unknown", "restricted", "unavailable", "private", "withheld", "blocked")
_KEYPAD: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "22233344455566677778889999")
_SPELLED: Final = frozenset(word.translate(_KEYPAD) for word in _WORDS)
_DIALLING_MARKS: Final = re.compile(r"[\s+().-]")


def is_withheld(raw: str | None) -> bool:
    """Whether a platform's caller ID says "no number": empty, one of the words, or its keypad digits."""
    text = (raw or "").strip().lower()
    if not text:
        return True
    if any(word in text for word in _WORDS):
        return True
    return _DIALLING_MARKS.sub("", text) in _SPELLED


def stand_in_number(call: CallRef) -> str:
    """A caller number of this call alone, for a caller whose number is withheld.

    The call is then remembered like any other (its own turns are the LLM's context, it is archived),
    but under a caller no other call has, so no later call is greeted with it. The number is in +888,
    the ITU's code for disaster relief (OCHA), which the number rules accept as valid, but under which no
    caller is expected: 11 digits of a hash of the call, so two calls share one with a chance of about
    n^2 / 2e11 among n withheld calls of a bot.
    """
    digest = hashlib.sha256(f"{call.platform}:{call.call_id}".encode()).digest()
    return f"+888{int.from_bytes(digest[:8], 'big') % 10**11:011d}"
