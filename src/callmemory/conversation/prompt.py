"""The LLM prompt for one turn, built from the caller's memory under a hard token budget.

The memory context is everything the prompt carries besides the operator's system prompt: what is
known of the caller (profile, rolling summary), what a search of their whole archive found for what
they just said, summaries of their recent calls, the end of earlier conversations, and this call's
turns. It is counted with a real tokenizer and never exceeds the budget; what does not fit is dropped
oldest first, so the prompt stays the same size whether the caller has called once or a thousand times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Any, Literal

from callmemory.conversation.tokens import TokenCounter
from callmemory.core.events import Role
from callmemory.memory.profile import PROFILE
from callmemory.memory.types import CallerMemory, CallSummary, Found, Turn

# Said to the model whatever the operator's system prompt is: every answer is spoken by a voice, and what
# it cannot say is cut out afterwards anyway (conversation/speech.py), so asking first saves the tokens.
SPOKEN_ANSWERS = (
    "Your answers are spoken aloud on a phone call. Answer in one or two short, plain sentences, the way "
    "a person talks: no lists, headings, markdown, links or emoji, no placeholders such as [name], and "
    "no sign-off as in a letter."
)


def instructions(system_prompt: str) -> str:
    """What the system message says before the caller's memory: the operator's prompt, then how to
    answer on the phone."""
    return f"{system_prompt}\n\n{SPOKEN_ANSWERS}"


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
    found: tuple[Found, ...] = ()  # what the search found that the prompt shows, best first


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

    @property
    def key(self) -> tuple[str, int | None]:
        """Which turn or call summary it is, as a search match names it."""
        return (self.item.call_id, self.item.seq if isinstance(self.item, Turn) else None)


@dataclass(slots=True)
class _Kept:
    """What fits of the caller's summary and recent calls."""

    known: str
    pieces: list[_Piece]
    dropped: int

    @property
    def keys(self) -> set[tuple[str, int | None]]:
        return {p.key for p in self.pieces}


def _key(found: Found) -> tuple[str, int | None]:
    return (found.call_id, found.seq)


def _found_line(found: Found) -> str:
    at = f"{found.call_started_at:%Y-%m-%d %H:%M} UTC"
    if found.role is None:
        return f"Call on {at}, summary: {found.text}"
    return f"Call on {at}: {'Caller' if found.role is Role.CALLER else 'You'}: {found.text}"


def _found_section(found: Sequence[Found]) -> str:
    lines = "\n".join(_found_line(f) for f in found)
    return (
        f"From earlier calls with this caller, what matches what they just said (best match first):\n{lines}"
    )


def _calls_before(memory: CallerMemory, earlier: Sequence[Turn], current_call_id: str | None) -> int:
    """The earlier calls, counted so as to agree with the ones the prompt shows: `call_count` counts
    archived calls only, and a call that never hung up (until the idle sweep archives it) is missing
    from it while its turns are already remembered."""
    shown = {t.call_id for t in earlier} | {s.call_id for s in memory.call_summaries}
    return max(memory.call_count, len(shown - {current_call_id}))


class PromptBuilder:
    def __init__(
        self, system_prompt: str, counter: TokenCounter, budget_tokens: int, *, search_share: float = 0.3
    ) -> None:
        self._system_prompt = instructions(system_prompt)
        self._counter = counter
        self._budget = budget_tokens
        self._search_share = search_share

    def build(
        self, memory: CallerMemory, current_call_id: str | None, *, budget_tokens: int | None = None
    ) -> Prompt:
        """System prompt with what is remembered, then this call as chat turns.

        Earlier calls go into the system message rather than as chat turns, so the model does not answer
        last week's question as if it had just been asked. `budget_tokens` overrides the configured
        budget (a platform's own AI may take less).

        What a search of the archive found takes up to its share of the budget, best match first; what
        it leaves goes to the rest. A match that the rest shows anyway (a recent turn, a call's
        summary) is not shown twice, and the room it would have taken goes back to the rest.
        """
        budget = budget_tokens or self._budget
        found = self._fit_found(
            [f for f in memory.found if f.call_id != current_call_id], int(budget * self._search_share)
        )
        kept = self._fit(memory, current_call_id, budget - self._found_tokens(found))
        if shown := [f for f in found if _key(f) in kept.keys]:
            found = [f for f in found if f not in shown]
            kept = self._fit(memory, current_call_id, budget - self._found_tokens(found))
            found = [f for f in found if _key(f) not in kept.keys]
        while True:
            prompt = self._assemble(kept.known, kept.pieces, kept.dropped, found)
            if prompt.memory_tokens <= budget:
                return prompt
            if len(kept.pieces) > 1:
                kept.pieces.pop(0)
                kept.dropped += 1
            elif found:
                found.pop()
            else:
                return prompt

    def _fit_found(self, found: Sequence[Found], room: int) -> list[Found]:
        """The best matches that fit in `room` tokens, each whole; a long one may leave room for the next."""
        fitted = []
        for f in found:
            cost = self._counter.count(_found_line(f)) + 1
            if cost <= room:
                fitted.append(f)
                room -= cost
        return fitted

    def _found_tokens(self, found: Sequence[Found]) -> int:
        return self._counter.count(_found_section(found)) + 2 if found else 0

    def _fit(self, memory: CallerMemory, current_call_id: str | None, budget: int) -> _Kept:
        """What is known of the caller and as much of their recent calls as fits in `budget`."""
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
        # Newest first, each piece counted alone: a first cut that the exact count in build() confirms.
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
        return _Kept(known, kept, len(timeline) - len(kept))

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

    def _assemble(self, known: str, kept: Sequence[_Piece], dropped: int, found: Sequence[Found]) -> Prompt:
        summaries = [p.item for p in kept if p.kind == "summary" and isinstance(p.item, CallSummary)]
        earlier = [p.item for p in kept if p.kind == "earlier" and isinstance(p.item, Turn)]
        current = [p.item for p in kept if p.kind == "current" and isinstance(p.item, Turn)]
        memory = [known] if known else []
        if found:
            memory.append(_found_section(found))
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
        return Prompt(
            messages=messages, context=context, memory_tokens=tokens, dropped=dropped, found=tuple(found)
        )
