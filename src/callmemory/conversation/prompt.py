"""The LLM prompt for one turn, built from the caller's memory under a hard token budget.

The memory context is everything the prompt carries besides the operator's system prompt: what is
known of the caller (profile, rolling summary), summaries of their recent calls, the end of earlier
conversations, and this call's turns. It is counted with a real tokenizer and never exceeds the budget;
what does not fit is dropped oldest first, so the prompt stays the same size whether the caller has
called once or a thousand times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Any, Literal

from callmemory.conversation.tokens import TokenCounter
from callmemory.core.events import Role
from callmemory.memory.profile import PROFILE
from callmemory.memory.types import CallerMemory, CallSummary, Turn


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: list[Message]
    context: str  # the memory part of the system message, on its own
    memory_tokens: int  # the memory context's size, within the budget
    dropped: int  # pieces of memory left out for the budget, oldest first


def _speaker(turn: Turn) -> str:
    return "Caller" if turn.role is Role.CALLER else "You"


def _when(turn_or_summary: Turn | CallSummary) -> str:
    at = turn_or_summary.at if isinstance(turn_or_summary, Turn) else turn_or_summary.started_at
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _earlier_calls(turns: Sequence[Turn]) -> str:
    blocks = []
    for _call_id, call_turns in groupby(turns, key=lambda t: t.call_id):
        listed = list(call_turns)
        lines = "\n".join(f"{_speaker(t)}: {t.text}" for t in listed)
        blocks.append(f"Call on {_when(listed[0])}:\n{lines}")
    return "\n\n".join(blocks)


def _profile(profile: Mapping[str, Any]) -> str:
    parts = []
    for field in PROFILE:
        if not (value := profile.get(field.key)):
            continue
        shown = "; ".join(str(i).rstrip(" .") for i in value) if field.many else value
        parts.append(f"{field.label}: {shown}")
    return "".join(f"{p}. " for p in parts).rstrip()


@dataclass(frozen=True, slots=True)
class _Piece:
    """One unit of memory that is kept or dropped whole (a summary, a turn)."""

    kind: Literal["summary", "earlier", "current"]
    item: Turn | CallSummary


def _calls_before(memory: CallerMemory, earlier: Sequence[Turn], current_call_id: str | None) -> int:
    """The earlier calls, counted so as to agree with the ones the prompt shows: `call_count` counts
    archived calls only, and a call that never hung up (until the idle sweep archives it) is missing
    from it while its turns are already remembered."""
    shown = {t.call_id for t in earlier} | {s.call_id for s in memory.call_summaries}
    return max(memory.call_count, len(shown - {current_call_id}))


class PromptBuilder:
    def __init__(self, system_prompt: str, counter: TokenCounter, budget_tokens: int) -> None:
        self._system_prompt = system_prompt
        self._counter = counter
        self._budget = budget_tokens

    def build(
        self, memory: CallerMemory, current_call_id: str | None, *, budget_tokens: int | None = None
    ) -> Prompt:
        """System prompt with what is remembered, then this call as chat turns.

        Earlier calls go into the system message rather than as chat turns, so the model does not answer
        last week's question as if it had just been asked. `budget_tokens` overrides the configured
        budget (a platform's own AI may take less).
        """
        budget = budget_tokens or self._budget
        earlier = [t for t in memory.recent if t.call_id != current_call_id]
        before = _calls_before(memory, earlier, current_call_id)
        known = self._known(memory, before, budget) if before or memory.summary else ""
        current = [t for t in memory.recent if t.call_id == current_call_id]
        verbatim = {t.call_id for t in earlier}
        timeline = [  # oldest first; a call's summary is left out while its own turns are at hand
            *(_Piece("summary", s) for s in memory.call_summaries if s.call_id not in verbatim),
            *(_Piece("earlier", t) for t in earlier),
            *(_Piece("current", t) for t in current),
        ]
        # Newest first, each piece counted alone: a first cut that the exact count below then confirms.
        room = budget - self._counter.count(known)
        kept: list[_Piece] = []
        for piece in reversed(timeline):
            cost = self._counter.count(piece.item.text) + 8  # + the speaker, date and separators
            if cost > room:
                break
            kept.append(piece)
            room -= cost
        kept.reverse()
        if current and (not kept or kept[-1].item is not current[-1]):
            # What the caller just said is what the model must answer: it stays, shortened if need be.
            last = current[-1]
            room = max(budget - self._counter.count(known) - 8, 1)
            kept = [_Piece("current", replace(last, text=self._counter.keep_last(last.text, room)))]
        while True:
            prompt = self._assemble(known, kept, len(timeline) - len(kept))
            if prompt.memory_tokens <= budget or len(kept) <= 1:
                return prompt
            kept.pop(0)

    def _known(self, memory: CallerMemory, calls_before: int, budget: int) -> str:
        """What is known of the caller overall, capped at half the budget so recent talk always fits."""
        text = f"This caller has called {calls_before} time(s) before."
        if memory.last_topic:
            text += f' Last time they said: "{memory.last_topic}".'
        if profile := _profile(memory.profile):
            text += f"\n\nWhat you know about this caller: {profile}"
        if memory.summary:
            text += f"\n\nSummary of your earlier calls with this caller: {memory.summary}"
        return self._counter.keep_first(text, budget // 2)

    def _assemble(self, known: str, kept: Sequence[_Piece], dropped: int) -> Prompt:
        summaries = [p.item for p in kept if p.kind == "summary" and isinstance(p.item, CallSummary)]
        earlier = [p.item for p in kept if p.kind == "earlier" and isinstance(p.item, Turn)]
        current = [p.item for p in kept if p.kind == "current" and isinstance(p.item, Turn)]
        memory = [known] if known else []
        if summaries:
            memory.append(
                "Summaries of recent calls:\n" + "\n".join(f"Call on {_when(s)}: {s.text}" for s in summaries)
            )
        if earlier:
            memory.append(
                "The end of your earlier conversations with this caller:\n\n" + _earlier_calls(earlier)
            )
        context = "\n\n".join(memory)
        chat = [Message("user" if t.role is Role.CALLER else "assistant", t.text) for t in current]
        tokens = self._counter.count(context) + sum(self._counter.count(m.content) for m in chat)
        system = f"{self._system_prompt}\n\n{context}" if context else self._system_prompt
        messages = [Message("system", system), *chat]
        return Prompt(messages=messages, context=context, memory_tokens=tokens, dropped=dropped)
