"""A caller's memory as one bounded text, for a platform's own AI to read (e.g. VoIPBin's init prompt)."""

from __future__ import annotations

from callmemory.events import Role
from callmemory.memory.types import CallerMemory

NEW_CALLER = "This is the caller's first call; nothing is remembered about them."


def memory_brief(memory: CallerMemory, max_chars: int) -> str:
    """What is remembered, newest turns kept first when it does not all fit in `max_chars`."""
    if not memory.is_returning:
        return NEW_CALLER[:max_chars]
    head = f"The caller has called {memory.call_count} time(s) before."
    if memory.last_topic:
        head += f' Last time they said: "{memory.last_topic}".'
    lines: list[str] = []
    used = len(head) + len("\nEarlier conversation (oldest first):")
    for turn in reversed(memory.recent):
        line = f"\n{'Caller' if turn.role is Role.CALLER else 'Assistant'}: {turn.text}"
        if used + len(line) > max_chars:
            break
        lines.append(line)
        used += len(line)
    if not lines:
        return head[:max_chars]
    return head + "\nEarlier conversation (oldest first):" + "".join(reversed(lines))
