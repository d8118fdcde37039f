"""The summary made without an LLM, from the transcript itself, when the LLM gave none.

Deterministic, so that a job that keeps failing still moves the caller's memory on: the call's summary
is what the caller said, the rolling summary has it appended (the oldest sentences dropped past the
instructions' 120 words), the profile stays as it was (nothing can be learnt reliably without a model),
and the prepared greeting is cleared, so that the next call is greeted with this call's topic (picked
at the hangup by memory/topic.py, in the operator's template) rather than one prepared for an older call.
"""

from __future__ import annotations

import re
from typing import Final

from callmemory.core.events import Role
from callmemory.summaries.queue import SummaryResult, SummaryTask

_CALL_CHARS: Final = 400
_MIN_WORDS: Final = 3
_ROLLING_WORDS: Final = 120
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def call_summary(task: SummaryTask) -> str:
    """What the caller said in this call, condensed (short replies such as "yes" or "thanks" left out);
    the same text for the same call every time."""
    said = [" ".join(t.text.split()) for t in task.turns if t.role is Role.CALLER and t.text.strip()]
    kept = [s for s in said if len(s.split()) >= _MIN_WORDS] or said
    if not kept:
        return "The caller said nothing."
    return _cut("The caller said: " + " ".join(s if s[-1] in ".!?" else f"{s}." for s in kept), _CALL_CHARS)


def _rolling(previous: str | None, latest: str) -> str:
    sentences = [s for s in _SENTENCE_END.split(previous or "") if s.strip()]
    sentences.append(latest)
    while len(sentences) > 1 and sum(len(s.split()) for s in sentences) > _ROLLING_WORDS:
        sentences.pop(0)
    words = sentences[0].split()
    if len(sentences) == 1 and len(words) > _ROLLING_WORDS:
        return " ".join(words[:_ROLLING_WORDS]) + "…"
    return " ".join(sentences)


def fallback_result(task: SummaryTask) -> SummaryResult:
    """The summary from the transcript. A call already folded in by an earlier fallback (its stored
    summary is this one: the job was requeued and failed again) is not appended twice."""
    summary = call_summary(task)
    folded = task.call_summary == summary
    return SummaryResult(
        call_summary=summary,
        caller_summary=(task.summary or summary) if folded else _rolling(task.summary, summary),
        profile=task.profile,
        next_greeting="",
    )
