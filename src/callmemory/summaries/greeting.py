"""The greeting the summary model prepared for a caller's next call, made fit to say, or refused.

It is spoken at the next ringing as it is stored, with no model in between, so it is shaped here as a
live answer is (conversation/speech.py: markup, emoji and placeholders go) and then checked. A greeting
that fails a check is not stored: the next ringing then says the operator's template with the last topic
(memory/hot/scripts/greeting.lua), which is always fit to say. The checks run in the order of the
table in docs/summaries.md, and the first that fails is the reason given.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from callmemory.conversation.speech import sentences, speakable
from callmemory.memory.unfit import Unfit, unfit_text

# Six words in a row are a quotation, not a reference: "your order 48213" is how a greeting names an
# issue, "hi this is maria lopez my" is the call read back. Words are runs of letters and digits, compared
# case-blind, so punctuation and capitals do not hide a copy.
_ECHO_WORDS: Final = 6
_MAX_SENTENCES: Final = 2
_WORD: Final = re.compile(r"\w+")
# How a greeting opens. One that opens otherwise ("I'm sorry for any misunderstanding.", "Here is the
# greeting:", "Based on the transcript, ...") is the model talking about its task, not to the caller.
_GREETS: Final = re.compile(
    r"\b(?:welcome|hello|hi|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day)"
    r"|(?:nice|good|great|glad|lovely)\s+to\s+(?:hear|have|see|talk|speak)"
    r"|thanks?\s+(?:you\s+)?for\s+calling)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Prepared:
    text: str  # "" when refused
    refused: Unfit | None = None


def prepared_greeting(
    written: str, *, caller_said: Sequence[str], name: str | None, max_chars: int
) -> Prepared:
    """`written` as the next ringing should say it, or refused with the reason.

    `caller_said`: the caller's turns in the call just summarised; `name`: the caller's name, if the
    profile has one (a greeting may open with it instead of a greeting word).
    """
    # Shaped without a cap: speakable() would cut a long greeting to its first sentences, and a greeting
    # longer than asked for is not trusted in part.
    said = speakable(written, cut_off=False, max_chars=sys.maxsize).text
    reason = _unfit(said, caller_said, name, max_chars)
    return Prepared("", reason) if reason else Prepared(said)


def _unfit(said: str, caller_said: Sequence[str], name: str | None, max_chars: int) -> Unfit | None:
    if not said:
        return Unfit.UNSAYABLE
    return unfit_text(said) or _unlike_a_greeting(said, caller_said, name, max_chars)


def _unlike_a_greeting(
    said: str, caller_said: Sequence[str], name: str | None, max_chars: int
) -> Unfit | None:
    if _echoes(said, caller_said):
        return Unfit.TRANSCRIPT_ECHO
    first, *rest = sentences(said)
    if not _greets(first, name):
        return Unfit.NOT_A_GREETING
    if len(rest) >= _MAX_SENTENCES:
        return Unfit.TOO_MANY_SENTENCES
    if len(said) > max_chars:
        return Unfit.TOO_LONG
    return None


def _runs(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[at : at + _ECHO_WORDS]) for at in range(len(words) - _ECHO_WORDS + 1)}


def _echoes(greeting: str, caller_said: Sequence[str]) -> bool:
    """Whether the greeting repeats _ECHO_WORDS or more words in a row of one of the caller's turns."""
    runs = _runs(greeting)
    return bool(runs) and any(runs & _runs(turn) for turn in caller_said)


def _greets(sentence: str, name: str | None) -> bool:
    if _GREETS.search(sentence):
        return True
    spoken = set(_WORD.findall(sentence.lower()))
    return any(len(part) > 1 and part in spoken for part in _WORD.findall((name or "").lower()))
