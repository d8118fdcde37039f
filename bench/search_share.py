"""How the prompt's budget is best shared between search results and the rest (summary, profile, recent
calls): the replay of tests/memory/search/test_recall.py (60 calls, one fact each, a summary that keeps
the last 15), then on call 61 each question's prompt built at several budgets and search shares, printing
recall (the asked-for fact in the prompt) and how much of the rest the search's share left out.

    ./dev run python bench/search_share.py

Uses the servers the tests use, in a database and key prefix of its own, removed afterwards; the stub LLM
answers and summarises.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

from callmemory.conversation.prompt import PromptBuilder
from callmemory.conversation.tokens import TokenCounter
from callmemory.devtools.stub_llm import StubServer
from callmemory.services import open_services

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.app import running  # the tests' helpers, importable above
from support.phone import Phone
from support.replay import ASKED, KEPT_FACTS, bounded_summary, stated
from support.services import scratch_settings, scratch_stores

BUDGETS = (2000, 1000, 600)
SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


async def main() -> None:
    async with scratch_stores("share") as stores, StubServer().running() as llm:
        llm.stub.summary = bounded_summary(KEPT_FACTS)
        settings = scratch_settings(
            stores, openai_api_key="sk-bench", openai_base_url=llm.base_url, summary_worker=False
        )
        async with running(settings) as http:
            phone = Phone(http)
            for fact in stated():
                await phone.call(fact)
                async with open_services(settings) as services:
                    assert services.summaries is not None
                    await services.summaries.drain()
            call_id, _ = await phone.ring()
            asked = []
            async with open_services(settings) as services:
                caller = services.memory.address(phone.bot or "", phone.caller)
                for _, answer, question in ASKED:
                    await phone.say(call_id, question)
                    memory = await services.memory.memory_for(caller)
                    found = await services.memory.recall(caller, question)
                    asked.append((answer, replace(memory, found=found)))
    counter = TokenCounter()
    print(
        f"{len(ASKED)} questions on call 61; 'rest dropped': recent turns and call summaries left out for "
        "the budget, on average (of the same pieces at every share)"
    )
    header = ("budget", 6), ("share", 5), ("recall", 6), ("rest dropped", 12), ("found shown", 11)
    print(" ".join(f"{name:>{width}}" for name, width in header) + f" {'max tokens':>10}")
    for budget in BUDGETS:
        for share in SHARES:
            builder = PromptBuilder(settings.system_prompt, counter, budget, search_share=share)
            prompts = [(answer, builder.build(memory, call_id)) for answer, memory in asked]
            recall = sum(answer in p.context for answer, p in prompts) / len(prompts)
            dropped = sum(p.dropped for _, p in prompts) / len(prompts)
            shown = sum(len(p.found) for _, p in prompts) / len(prompts)
            print(
                f"{budget:>6} {share:>5.1f} {recall:>6.2f} {dropped:>12.1f} {shown:>11.1f} "
                f"{max(p.memory_tokens for _, p in prompts):>10}"
            )


if __name__ == "__main__":
    asyncio.run(main())
