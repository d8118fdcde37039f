"""How much hot memory keeps, and for how long."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HotSettings:
    prefix: str = "cm"
    recent_turns: int = 20
    memory_ttl_s: int = 30 * 24 * 3600
    call_ttl_s: int = 24 * 3600
    call_summaries: int = 10  # summaries of the most recent calls kept hot
