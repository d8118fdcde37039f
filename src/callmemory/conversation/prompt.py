"""The LLM prompt for one turn, built from the caller's memory."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Literal

from callmemory.events import Role
from callmemory.memory.types import CallerMemory, Turn


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


def _speaker(turn: Turn) -> str:
    return "Caller" if turn.role is Role.CALLER else "You"


def _earlier_calls(turns: list[Turn]) -> str:
    blocks = []
    for _call_id, call_turns in groupby(turns, key=lambda t: t.call_id):
        listed = list(call_turns)
        lines = "\n".join(f"{_speaker(t)}: {t.text}" for t in listed)
        blocks.append(f"Call on {listed[0].at:%Y-%m-%d %H:%M} UTC:\n{lines}")
    return "\n\n".join(blocks)


def build_messages(system_prompt: str, memory: CallerMemory, current_call_id: str) -> list[Message]:
    """System prompt with what is remembered from earlier calls, then this call as chat turns.

    Earlier calls go into the system message rather than as chat turns, so the model does not answer
    last week's question as if it had just been asked.
    """
    earlier = [t for t in memory.recent if t.call_id != current_call_id]
    current = [t for t in memory.recent if t.call_id == current_call_id]
    system = system_prompt
    if memory.is_returning:
        system += f"\n\nThis caller has called {memory.call_count} time(s) before."
        if memory.last_topic:
            system += f' Last time they said: "{memory.last_topic}".'
    if earlier:
        system += "\n\nThe end of your earlier conversations with this caller:\n\n" + _earlier_calls(earlier)
    return [
        Message("system", system),
        *(Message("user" if t.role is Role.CALLER else "assistant", t.text) for t in current),
    ]
