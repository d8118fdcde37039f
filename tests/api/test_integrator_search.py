"""The /v1 search of a caller's archive, and what search contributed to the memory context."""

from __future__ import annotations

import httpx
import pytest

from callmemory.settings import Settings
from support.api import BOT_A_KEY, BOT_B, Api, caller_path
from support.app import running
from support.llm import FakeLLM
from support.outage import Outage, through
from support.phone import Phone


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


async def test_the_search_answers_matching_turns_with_their_call_id_and_date(phone: Phone, api: Api) -> None:
    call_id, _ = await phone.call("The serial number on my dishwasher is DW-4471-X.")
    await phone.call("The weather is lovely.")

    response = await api.get(f"{caller_path()}/search", q="what was the dishwasher's serial?")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == "what was the dishwasher's serial?"
    said = [r for r in body["results"] if r["role"] == "caller"]
    assert [(r["call_id"], r["kind"], r["text"]) for r in said] == [
        (call_id, "turn", "The serial number on my dishwasher is DW-4471-X.")
    ]
    assert said[0]["started_at"]
    assert all("weather" not in r["text"] for r in body["results"])


async def test_a_search_without_words_is_refused_with_422(api: Api) -> None:
    response = await api.get(f"{caller_path()}/search", q="")

    assert response.status_code == 422
    assert "q" in response.text


async def test_a_key_for_another_bot_cannot_search_its_callers(
    phone: Phone, client: httpx.AsyncClient
) -> None:
    await Phone(client, bot=BOT_B).call("The serial number on my dishwasher is DW-4471-X.")

    response = await Api(client, key=BOT_A_KEY).get(f"{caller_path(bot=BOT_B)}/search", q="dishwasher")

    assert response.status_code == 404


async def test_the_context_shows_what_the_search_contributed(phone: Phone, api: Api) -> None:
    await phone.call("The serial number on my dishwasher is DW-4471-X.")
    for n in range(12):  # the fact leaves the verbatim window
        await phone.call(f"Call {n}: the weather is nice today.")

    response = await api.get(f"{caller_path()}/context", q="Which serial did my dishwasher have?")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["search"][0]["text"] == "The serial number on my dishwasher is DW-4471-X."
    assert "Caller: The serial number on my dishwasher is DW-4471-X." in body["messages"][0]["content"]
    assert body["memory_tokens"] <= body["budget_tokens"]


async def test_the_context_of_a_live_call_searches_for_its_last_caller_turn(phone: Phone, api: Api) -> None:
    await phone.call("Our dog is called Biscuit.")
    for n in range(12):
        await phone.call(f"Call {n}: the weather is nice today.")
    await api.post(f"{caller_path()}/live/live-1/turns", {"role": "caller", "text": "What is my dog called?"})

    response = await api.get(f"{caller_path()}/context", call_id="live-1")

    assert response.json()["search"][0]["text"] == "Our dog is called Biscuit."


async def test_with_postgres_down_the_search_answers_503(
    settings: Settings, llm: FakeLLM, postgres: Outage
) -> None:
    async with running(through(settings, postgres)) as http:
        await postgres.cut()
        response = await Api(http).get(f"{caller_path()}/search", q="dishwasher")

    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"
