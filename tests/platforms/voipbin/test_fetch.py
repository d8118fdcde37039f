"""VoIPBin's fetch action: greeting and memory as a bare array of actions, per the bot's mode."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from callmemory.conversation.brief import NEW_CALLER
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.voipbin import (
    AI_ID,
    FETCH_TOKEN,
    MANAGED_BOT,
    FakeVoipbinApi,
    ScriptedCall,
    Voipbin,
    greeting_of,
)

Rows = Callable[..., Any]


async def _keys(redis: Redis, settings: Settings) -> list[str]:
    return [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*")]


def _types(actions: list[dict[str, Any]]) -> list[str]:
    return [a["type"] for a in actions]


async def test_own_llm_fetch_greets_transcribes_and_holds_the_call(
    voipbin: Voipbin, voipbin_settings: Settings
) -> None:
    response = await voipbin.fetch(ScriptedCall())

    assert response.status_code == 200
    actions = response.json()
    assert _types(actions) == ["talk", "transcribe_start", "sleep"]
    assert greeting_of(actions) == voipbin_settings.greeting_new
    assert actions[1]["option"]["direction"] == "in"
    assert all(uuid.UUID(a["id"]) for a in actions)


async def test_managed_ai_fetch_sets_the_memory_brief_greets_and_starts_the_ai(voipbin: Voipbin) -> None:
    actions = await voipbin.actions(ScriptedCall(bot=MANAGED_BOT))

    assert _types(actions) == ["variable_set", "talk", "ai_talk"]
    assert actions[0]["option"] == {"key": "caller.memory", "value": NEW_CALLER}
    assert actions[2]["option"]["assistance_id"] == AI_ID


async def test_an_outgoing_call_takes_the_called_person_as_the_caller_and_shares_their_memory(
    voipbin: Voipbin, sql: Rows
) -> None:
    incoming = ScriptedCall()
    await voipbin.actions(incoming)
    said = incoming.transcript("My parcel 4417 never arrived.")
    await voipbin.deliver_all([incoming.transcribe_created(), said, incoming.hangup()])
    outgoing = ScriptedCall(outgoing=True)

    actions = await voipbin.actions(outgoing)
    await voipbin.deliver_all([outgoing.created(), outgoing.hangup()])

    assert "My parcel 4417 never arrived" in greeting_of(actions)
    rows = await sql(
        "SELECT DISTINCT caller_id FROM calls WHERE external_id IN (:a, :b)",
        a=incoming.call_id,
        b=outgoing.call_id,
    )
    assert len(rows) == 1


async def test_fetch_by_post_answers_the_same_actions(voipbin: Voipbin) -> None:
    response = await voipbin.fetch(ScriptedCall(), method="POST")

    assert response.status_code == 200
    assert _types(response.json()) == ["talk", "transcribe_start", "sleep"]


async def test_a_wrong_token_is_refused_without_touching_memory(
    voipbin: Voipbin, redis: Redis, voipbin_settings: Settings
) -> None:
    response = await voipbin.fetch(ScriptedCall(), token="guessed")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert await _keys(redis, voipbin_settings) == []


async def test_fetch_is_off_without_a_configured_token(
    settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi, redis: Redis
) -> None:
    async with running(settings) as http:
        response = await Voipbin(http, voipbin_api).fetch(ScriptedCall(), token="anything")

    assert response.status_code == 404
    assert await _keys(redis, settings) == []


async def test_a_plus_turned_into_a_space_is_the_same_caller(voipbin: Voipbin) -> None:
    first = ScriptedCall(bot=MANAGED_BOT)
    await voipbin.actions(first)
    await voipbin.deliver_all([first.ai_message("user", "My order 4417 never arrived."), first.hangup()])

    second = ScriptedCall(bot=MANAGED_BOT, caller=" " + first.caller.removeprefix("+"))
    actions = await voipbin.actions(second)

    assert "My order 4417 never arrived" in greeting_of(actions)


async def test_a_withheld_caller_is_greeted_and_briefed_as_new_every_time(
    voipbin: Voipbin, voipbin_settings: Settings
) -> None:
    first = ScriptedCall(caller="anonymous", bot=MANAGED_BOT)
    await voipbin.actions(first)
    await voipbin.deliver_all([first.ai_message("user", "My parcel 4417 never arrived."), first.hangup()])

    actions = await voipbin.actions(ScriptedCall(caller="anonymous", bot=MANAGED_BOT))

    assert greeting_of(actions) == voipbin_settings.greeting_new
    assert actions[0]["option"]["value"] == NEW_CALLER


async def test_a_fetch_with_a_blank_bot_number_greets_the_caller_as_a_stranger(
    voipbin: Voipbin, voipbin_settings: Settings, redis: Redis
) -> None:
    call = ScriptedCall()
    response = await voipbin.http.get(f"/voipbin/fetch/{FETCH_TOKEN}/%20/{call.caller}")

    assert response.status_code == 200
    assert greeting_of(response.json()) == voipbin_settings.greeting_new
    assert await _keys(redis, voipbin_settings) == []


async def test_a_fetch_without_a_body_still_greets(voipbin: Voipbin, voipbin_settings: Settings) -> None:
    call = ScriptedCall()
    response = await voipbin.http.get(f"/voipbin/fetch/{FETCH_TOKEN}/{call.bot}/{call.caller}")

    assert response.status_code == 200
    assert greeting_of(response.json()) == voipbin_settings.greeting_new


async def test_a_store_outage_answers_503(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi
) -> None:
    down = voipbin_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0", "redis_timeout_s": 0.2})
    async with running(down) as http:
        response = await Voipbin(http, voipbin_api).fetch(ScriptedCall())

    assert response.status_code == 503


async def test_per_bot_greetings_override_the_default(
    voipbin_settings: Settings, llm: FakeLLM, voipbin_api: FakeVoipbinApi
) -> None:
    configured = voipbin_settings.model_copy(
        update={"voipbin_bots": {MANAGED_BOT: VoipbinBot(mode="own_llm", greeting_new="Guten Tag!")}}
    )
    async with running(configured) as http:
        actions = await Voipbin(http, voipbin_api).actions(ScriptedCall(bot=MANAGED_BOT))

    assert greeting_of(actions) == "Guten Tag!"


async def test_the_fetch_records_the_greeting_as_the_first_turn(
    voipbin: Voipbin, sql: Any, voipbin_settings: Settings
) -> None:
    call = ScriptedCall()
    await voipbin.actions(call)
    await voipbin.deliver_all([call.hangup()])

    rows = await sql(
        "SELECT t.role, t.text FROM turns t JOIN calls c ON c.id = t.call_id WHERE c.external_id = :id",
        id=call.call_id,
    )
    assert [tuple(r) for r in rows] == [("bot", voipbin_settings.greeting_new)]


async def test_the_docs_show_voipbin_events_and_fetch_answers(voipbin: Voipbin) -> None:
    spec = (await voipbin.http.get("/openapi.json")).json()

    events = spec["paths"]["/voipbin/events"]["post"]["requestBody"]["content"]["application/json"]
    kinds = {e["value"]["type"] for e in events["examples"].values()}
    assert {"call_progressing", "transcript_created", "aimessage_created", "call_hangup"} <= kinds
    fetch = spec["paths"]["/voipbin/fetch/{token}/{destination}/{source}"]
    answers = fetch["get"]["responses"]["200"]["content"]["application/json"]["examples"]
    assert {"managed-AI mode", "own-LLM mode"} <= set(answers)
    assert "post" in fetch


async def test_a_fetch_body_holding_a_nul_greets_the_caller_without_recording_the_call(
    voipbin: Voipbin, voipbin_settings: Settings, redis: Redis
) -> None:
    call = ScriptedCall()
    url = f"/voipbin/fetch/{FETCH_TOKEN}/{call.bot}/{call.caller}"

    response = await voipbin.http.post(url, json={"reference_id": "c-\u0000"})

    assert response.status_code == 200
    assert greeting_of(response.json()) == voipbin_settings.greeting_new
    assert [k for k in await _keys(redis, voipbin_settings) if "callref" in k] == []


async def test_the_fetch_url_names_both_its_methods_to_any_other(voipbin: Voipbin) -> None:
    response = await voipbin.http.options(f"/voipbin/fetch/{FETCH_TOKEN}/+15559876543/+15551234567")

    assert response.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["allow"].split(",")}


async def test_a_withheld_caller_is_recorded_under_the_call_alone_and_never_greeted_as_known(
    voipbin: Voipbin, voipbin_settings: Settings, sql: Rows
) -> None:
    first = ScriptedCall(caller="anonymous")
    await voipbin.actions(first)
    said = first.transcript("My parcel 4417 never arrived.")
    await voipbin.deliver_all([first.transcribe_created(), said, first.hangup()])

    second = await voipbin.actions(ScriptedCall(caller="anonymous"))

    assert greeting_of(second) == voipbin_settings.greeting_new
    [row] = await sql(
        "SELECT count(*) AS turns FROM turns t JOIN calls c ON c.id = t.call_id WHERE c.external_id = :id",
        id=first.call_id,
    )
    assert row.turns == 3  # greeting, the caller's line, the answer: the call itself was kept
