"""The first thing the bot says: built from stored memory only, so the caller never waits on an LLM.

These are the templates; the rule that picks one is in memory/hot/scripts/greeting.lua, the only
statement of it, so that a returning caller is greeted inside Redis in the round trip that opens the call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Greetings:
    new: str
    returning: str  # may contain {topic}
    returning_no_topic: str = "Welcome back! How can I help you today?"
