"""What the LLM was shown, measured as the prompt's budget measures it."""

from __future__ import annotations

from typing import Any

from callmemory.conversation.prompt import instructions
from callmemory.conversation.tokens import TokenCounter
from callmemory.settings import Settings

COUNTER = TokenCounter()


def memory_tokens(settings: Settings, request: dict[str, Any]) -> int:
    """The memory context of a request the LLM got, counted as the budget counts it."""
    system, *chat = request["messages"]
    context = str(system["content"]).removeprefix(instructions(settings.system_prompt)).strip()
    return COUNTER.count(context) + sum(COUNTER.count(str(m["content"])) for m in chat)
