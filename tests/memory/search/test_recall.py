"""A caller's 61st call asks about facts from their first calls: the search brings them back.

Each of 60 calls states one fact tied to a topic word. The stub LLM's rolling summary keeps only the last
15 facts, as a real model's bounded summary would, and the verbatim window holds the last few calls: the
early facts are in the prompt only if the search of the archive finds them. Each question names its topic
in other words than the call that stated it.
"""

from __future__ import annotations

from callmemory.settings import Settings
from support.app import running, summarise_queued
from support.llm import FakeLLM
from support.phone import Phone
from support.prompt import memory_tokens
from support.replay import ASKED, KEPT_FACTS, bounded_summary, stated


async def _recall(settings: Settings, llm: FakeLLM) -> tuple[float, list[int]]:
    """Recall over the questions, and the memory context's size in tokens of each question's prompt."""
    llm.summary = bounded_summary(KEPT_FACTS)
    # Each summary would first wait for the endpoint to be quiet after its call's live answer (the gate
    # that lets live answers go first, timed in summaries/test_llm_budget.py): 1.5 s, sixty times over.
    settings = settings.model_copy(update={"summary_yield_to_live": False})
    async with running(settings) as client:
        phone = Phone(client)
        facts = stated()
        assert len(facts) == 60
        for fact in facts:
            await phone.call(fact)
            await summarise_queued(settings)
        call_id, _ = await phone.ring()
        recalled, sizes = 0, []
        for _, answer, question in ASKED:
            await phone.say(call_id, question)
            recalled += answer in llm.prompt_text()
            sizes.append(memory_tokens(settings, llm.requests[-1]))
    return recalled / len(ASKED), sizes


async def test_facts_from_the_first_calls_are_in_the_prompt_of_call_61_within_the_budget(
    settings: Settings, llm: FakeLLM
) -> None:
    recall, sizes = await _recall(settings, llm)

    print(f"recall with search over {len(ASKED)} questions: {recall:.2f}; memory tokens {max(sizes)} at most")
    # Every question shares its topic word with the sentence that answers it, which a lexical search
    # finds; one miss in ten is allowed for a ranking that puts another call's match first.
    assert recall >= 0.9
    assert max(sizes) <= settings.memory_context_tokens


async def test_without_search_the_bounded_summary_has_lost_the_first_calls_facts(
    settings: Settings, llm: FakeLLM
) -> None:
    recall, _ = await _recall(settings.model_copy(update={"search_enabled": False}), llm)

    print(f"recall without search over {len(ASKED)} questions: {recall:.2f}")
    assert recall == 0.0
