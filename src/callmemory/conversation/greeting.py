"""The first thing the bot says: built from stored memory only, so the caller never waits on an LLM."""

from __future__ import annotations

from dataclasses import dataclass

from callmemory.memory.types import CallerMemory


@dataclass(frozen=True, slots=True)
class Greetings:
    new: str
    returning: str  # may contain {topic}
    returning_no_topic: str = "Welcome back! How can I help you today?"

    def for_caller(self, memory: CallerMemory) -> str:
        if memory.greeting:
            return memory.greeting  # prepared by the summary job after their last call
        if not memory.is_returning:
            return self.new
        if memory.last_topic:
            # replace, not str.format: an operator's template with other braces must not crash a call
            return self.returning.replace("{topic}", memory.last_topic)
        return self.returning_no_topic
