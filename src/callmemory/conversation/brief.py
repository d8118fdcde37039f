"""A caller's memory as one bounded text, for a platform's own AI to read (e.g. VoIPBin's init prompt)."""

from __future__ import annotations

from callmemory.conversation.prompt import PromptBuilder
from callmemory.memory.types import CallerMemory

NEW_CALLER = "This is the caller's first call; nothing is remembered about them."
_CHARS_PER_TOKEN = 4  # English text; the loop below makes the bound exact whatever the language


def memory_brief(prompt: PromptBuilder, memory: CallerMemory, max_chars: int) -> str:
    """What is remembered, at most `max_chars` long: the same memory context our own LLM gets.

    Built by the prompt builder, so a platform's AI knows what ours would (profile, rolling summary,
    recent call summaries, the end of earlier conversations), with the oldest material dropped first.
    """
    if not memory.is_returning:
        return NEW_CALLER[:max_chars]
    budget = max(max_chars // _CHARS_PER_TOKEN, 1)
    while True:
        context = prompt.build(memory, None, budget_tokens=budget).context
        if len(context) <= max_chars or budget == 1:
            return context[:max_chars]
        budget = max(budget * 3 // 4, 1)
