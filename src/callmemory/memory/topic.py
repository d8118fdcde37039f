"""A caller's topic: what they called about, in their own words, for the next call's greeting.

Picked without an LLM so the greeting costs the caller no waiting: the first sentence the caller said that
is more than a pleasantry. Greetings, fillers ("hello again", "um, so") and an introduction ("it's Maria
Lopez") come off its front, and a sentence of nothing else is no topic, so the greeting never quotes
"again" back. The greeting quotes the topic, so a long one is shortened where a clause ends, else where a
phrase does, never inside a phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from callmemory.core.events import Role
from callmemory.memory.types import Turn

# Words that open a sentence without saying anything, taken off however the sentence goes on.
_OPENERS: Final = (
    r"hi|hello|hey|hiya|again|um+|uh+|er+m?|so|well|oh|ok|okay|yes|yeah|yep|no|nope"
    r"|good (?:morning|afternoon|evening|day)"
)
# Words that say nothing only when nothing follows in their clause: "Thanks, ..." is a pleasantry,
# "Thanks for fixing it" is not; "Hi there," is, "There is a problem" is not.
_COURTESIES: Final = r"thanks|thank you|bye|goodbye|sorry|please|right|alright|great|cheers|there"
_FILLER: Final = re.compile(
    rf"^(?:(?:{_OPENERS})\b[\s,.!?-]*|(?:{_COURTESIES})\s*(?:[,.!?-]+\s*|$))+", re.IGNORECASE
)
_NAME: Final = r"(?:(?:Mr|Mrs|Ms|Dr)\.?\s+)?[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2}"
_INTRO: Final = rf"(?i:it'?s|it is|this is|my name is|i am|i'm)\s+{_NAME}(?:\s+(?i:here|again|calling))*"
# An introduction in front of what the caller goes on to say: "It's Maria Lopez, and ...".
_LEADING_INTRO: Final = re.compile(rf"^{_INTRO}\s*(?:[,;:-]\s*(?:(?i:and)\s+)?|(?i:and)\s+)")
# Sentences that say nothing the next call could ask about.
_NO_SUBSTANCE: Final = re.compile(
    rf"^(?:{_INTRO}|{_NAME}\s+(?i:here|speaking)"
    r"|(?i:(?:it'?s |it is )?(?:just )?me(?: again)?|how are you(?: doing| today)?|can you hear me"
    r"|are you there|is anyone there|anybody there|that'?s (?:all|it)|nothing else|not much))$"
)
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")
_TRIM: Final = " ,;:.!?-"

_MIN_WORDS: Final = 3
_MAX_CHARS: Final = 90
# Where a topic too long to quote whole may end: before a new clause, else before a new phrase.
_CLAUSE_BREAK: Final = re.compile(
    r"[,;:]\s|\s(?=(?:and|but|so|because|since|as|which|who|that|when|while|if|although|though)\s)",
    re.IGNORECASE,
)
_PHRASE_BREAK: Final = re.compile(
    r"\s(?=(?:for|of|to|with|about|from|on|in|at|by|after|before|until|over|into|like|than|or)\s)",
    re.IGNORECASE,
)
_DANGLING: Final = frozenset({"a", "an", "the", "my", "your", "our", "of", "to", "for", "and", "or", "with"})


def topic_of(turns: Iterable[Turn]) -> str | None:
    """The first sentence of substance the caller said, or failing one of three words or more, the first
    shorter one ("Billing."); None when the caller said nothing but pleasantries."""
    short: str | None = None
    for turn in turns:
        if turn.role is not Role.CALLER:
            continue
        for sentence in _SENTENCE_END.split(turn.text.strip()):
            said = _said(sentence)
            if not said:
                continue
            if len(said.split()) >= _MIN_WORDS:
                return _shortened(said)
            short = short or said
    return _shortened(short) if short else None


def _said(sentence: str) -> str:
    """The sentence without its fillers and introduction; "" when nothing else was in it."""
    said = sentence.strip()
    while True:
        bare = _FILLER.sub("", said)
        bare = _LEADING_INTRO.sub("", bare).strip()
        if bare == said:
            break
        said = bare
    said = said.rstrip(_TRIM)
    return "" if _NO_SUBSTANCE.match(said) else said


def _shortened(text: str) -> str:
    """`text` if it is short enough to quote, else its longest start that ends a clause or a phrase and
    keeps a third of the room; else its longest start of whole words, less any dangling "the", "of"."""
    if len(text) <= _MAX_CHARS:
        return text
    head = text[: _MAX_CHARS + 1]  # a break right after the last character that fits still counts
    for breaks in (_CLAUSE_BREAK, _PHRASE_BREAK):
        if ends := [b.start() for b in breaks.finditer(head) if b.start() >= _MAX_CHARS // 3]:
            return head[: ends[-1]].rstrip(_TRIM)
    words = head.rsplit(" ", 1)[0].rstrip(_TRIM).split(" ")
    while len(words) > _MIN_WORDS and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words)
