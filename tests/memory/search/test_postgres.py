"""The archive's search: one caller's own turns and summaries, nobody else's, and nothing once erased."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from callmemory.core.events import CallRef
from callmemory.core.identity import CallerId
from callmemory.services import open_services
from callmemory.settings import Settings
from support.api import BOT_B
from support.app import summarise_queued
from support.phone import Phone

CALLER = "+14155551234"
BOT = "+14155550000"
OTHER_CALLER = "+14155559876"


async def _search(settings: Settings, said: str, bot: str = BOT, caller: str = CALLER) -> list[str]:
    async with open_services(settings) as services:
        found = await services.memory.search(services.memory.address(bot, caller), said, 10)
    return [f.text for f in found]


async def _caller(settings: Settings) -> CallerId:
    async with open_services(settings) as services:
        return services.memory.address(BOT, CALLER)


async def test_a_search_finds_the_callers_own_turns_and_never_another_callers_or_bots(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await Phone(client, caller=CALLER, bot=BOT).call("My dishwasher serial is AAA-111.")
    await Phone(client, caller=OTHER_CALLER, bot=BOT).call("My dishwasher serial is BBB-222.")
    await Phone(client, caller=CALLER, bot=BOT_B).call("My dishwasher serial is CCC-333.")

    found = " ".join(await _search(settings, "what was the serial of the dishwasher?"))

    assert "AAA-111" in found
    assert "BBB-222" not in found
    assert "CCC-333" not in found


async def test_a_search_finds_a_calls_summary(client: httpx.AsyncClient, settings: Settings) -> None:
    call_id, _ = await Phone(client).call("Hello, it's about my invoice.")
    async with open_services(settings) as services:  # as a platform's own summary of the call is kept
        assert await services.memory.store_summary(
            CallRef("seed", call_id), "An engineer visit was booked for Tuesday."
        )

    found = await _search(settings, "when is the engineer coming?")

    assert found == ["An engineer visit was booked for Tuesday."]


async def test_words_that_are_all_stop_words_find_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await Phone(client).call("It is what it is.")

    assert await _search(settings, "it is what it is") == []


async def test_erasure_removes_what_the_search_would_find(
    client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any]
) -> None:
    await Phone(client).call("Our dog is called Biscuit.")
    await summarise_queued(settings)
    assert await _search(settings, "the dog") != []

    async with open_services(settings) as services:
        await services.eraser.erase(await _caller(settings))

    assert await _search(settings, "the dog") == []
    assert await sql("SELECT 1 FROM turns WHERE search @@ 'dog'::tsquery") == []
    assert await sql("SELECT 1 FROM calls WHERE search @@ 'dog'::tsquery") == []


async def test_the_text_search_configuration_is_a_setting(
    client: httpx.AsyncClient, settings: Settings, sql: Callable[..., Any]
) -> None:
    simple = settings.model_copy(update={"search_text_config": "simple"})
    try:
        async with open_services(simple):
            pass
        await Phone(client).call("The dishwashers are leaking.")

        # `simple` neither stems nor drops stop words: the words are kept as they were said.
        assert [r.search for r in await sql("SELECT search::text FROM turns WHERE seq = 2")] == [
            "'are':3 'dishwashers':2 'leaking':4 'the':1"
        ]
        assert "The dishwashers are leaking." in await _search(simple, "dishwashers")
        assert await _search(simple, "dishwasher") == []
    finally:
        async with open_services(settings):
            pass  # back to english for the tests that follow
