"""The /v1 integrator API: bearer keys, bot scoping, memory context, live turns, calls, export."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from callmemory.conversation.brief import NEW_CALLER
from callmemory.conversation.prompt import instructions
from callmemory.settings import Settings
from support.api import BOT_A, BOT_A_KEY, BOT_B, CALLER, Api, caller_path
from support.app import summarise_queued
from support.llm import FakeLLM
from support.phone import Phone
from support.voipbin import ScriptedCall, Voipbin


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


async def test_a_request_without_a_key_is_refused_with_401(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1{caller_path()}/calls")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_wrong_key_is_refused_with_401(client: httpx.AsyncClient) -> None:
    response = await Api(client, key="not-a-key-0123456789abcdefghij").get(f"{caller_path()}/calls")

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_the_context_is_the_callers_memory_as_llm_messages(
    phone: Phone, api: Api, settings: Settings
) -> None:
    await phone.call("My account number is 99812.")
    await summarise_queued(settings)

    response = await api.get(f"{caller_path()}/context")

    assert response.status_code == 200, response.text
    body = response.json()
    [system] = body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith(settings.system_prompt)
    assert (
        "Summary of your earlier calls with this caller: The caller said: My account number"
        in system["content"]
    )
    assert 0 < body["memory_tokens"] <= body["budget_tokens"] == settings.memory_context_tokens
    assert body["returning"] is True
    assert body["greeting"] == 'Welcome back! Is it still about "My account number is"?'


async def test_the_api_finds_the_caller_the_webhook_recorded_however_the_number_is_written(
    phone: Phone, api: Api
) -> None:
    await phone.call("My account number is 99812.")

    response = await api.get(caller_path(bot="+1 (415) 555-0000", caller="415-555-1234") + "/context")

    assert response.status_code == 200, response.text
    assert "My account number is 99812." in response.json()["messages"][0]["content"]


async def test_a_caller_never_seen_gets_the_bare_system_prompt(api: Api, settings: Settings) -> None:
    body = (await api.get(f"{caller_path()}/context")).json()

    assert body["messages"] == [{"role": "system", "content": instructions(settings.system_prompt)}]
    assert (body["returning"], body["greeting"]) == (False, settings.greeting_new)


async def test_the_brief_is_the_callers_memory_as_fields_and_as_one_text(
    phone: Phone, api: Api, settings: Settings
) -> None:
    call_id, _ = await phone.call("My account number is 99812.")
    await summarise_queued(settings)

    response = await api.get(f"{caller_path()}/brief", max_chars=1000)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["returning"], body["call_count"]) == (True, 1)
    assert body["last_topic"] == "My account number is 99812"
    assert body["profile"] == {"open_issues": ["My account number is 99812."]}
    assert [(c["call_id"], c["summary"]) for c in body["recent_calls"]] == [
        (call_id, "The caller said: My account number is 99812.")
    ]
    assert "Summary of your earlier calls with this caller: The caller said: My account" in body["brief"]
    assert len(body["brief"]) <= 1000


async def test_the_brief_of_a_caller_never_seen_says_nothing_is_remembered(api: Api) -> None:
    body = (await api.get(f"{caller_path()}/brief")).json()

    assert (body["returning"], body["call_count"], body["recent_calls"]) == (False, 0, [])
    assert body["brief"] == NEW_CALLER


async def test_turns_appended_through_the_api_are_in_the_context_and_archived_on_end(
    api: Api, sql: Callable[..., Any]
) -> None:
    live = f"{caller_path()}/live/conv-1"
    first = await api.post(f"{live}/turns", {"role": "caller", "text": "My router is down again."})
    second = await api.post(f"{live}/turns", {"role": "bot", "text": "Sorry to hear that."})
    context = (await api.get(f"{caller_path()}/context", call_id="conv-1")).json()
    ended = await api.post(f"{live}/end", {"reason": "completed"})

    assert (first.json(), second.json()) == ({"call_id": "conv-1", "seq": 1}, {"call_id": "conv-1", "seq": 2})
    assert context["messages"][1:] == [
        {"role": "user", "content": "My router is down again."},
        {"role": "assistant", "content": "Sorry to hear that."},
    ]
    assert ended.json() == {"status": "archived"}
    rows = await sql(
        "SELECT c.platform, c.end_reason, t.role, t.text FROM turns t JOIN calls c ON c.id = t.call_id"
    )
    assert [(r.platform, r.end_reason, r.role, r.text) for r in rows] == [
        ("api", "completed", "caller", "My router is down again."),
        ("api", "completed", "bot", "Sorry to hear that."),
    ]


async def test_an_empty_turn_is_refused_with_422(api: Api) -> None:
    response = await api.post(f"{caller_path()}/live/conv-1/turns", {"role": "caller", "text": "   "})

    assert response.status_code == 422
    assert response.json()["field"] == "text"


@pytest.mark.parametrize(
    ("text", "named"), [("down\u0000 again", "a NUL character"), ("down \ud800", "a lone surrogate")]
)
async def test_a_turn_holding_what_no_store_can_hold_is_refused_with_422_naming_the_field(
    api: Api, text: str, named: str
) -> None:
    body = json.dumps({"role": "caller", "text": text})

    response = await api.post_content(f"{caller_path()}/live/conv-1/turns", body)

    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("unstorable_input", "text")
    assert named in response.json()["detail"]


async def test_an_end_reason_holding_a_nul_is_refused_with_422_naming_the_field(api: Api) -> None:
    live = f"{caller_path()}/live/conv-1"
    await api.post(f"{live}/turns", {"role": "caller", "text": "My router is down again."})

    response = await api.post(f"{live}/end", {"reason": "done\u0000"})

    assert (response.status_code, response.json()["field"]) == (422, "reason")


async def test_a_path_holding_a_nul_is_refused_with_422_naming_the_parameter(api: Api) -> None:
    response = await api.get(f"{caller_path()}/calls/se%00ed/c-1")

    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("unstorable_input", "platform")


async def test_a_body_nested_too_deep_is_refused_with_422_naming_the_field(api: Api) -> None:
    body = '{"role": "caller", "text": "Hi", "extra": ' + "[" * 20_000 + "]" * 20_000 + "}"

    response = await api.post_content(f"{caller_path()}/live/conv-1/turns", body)

    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("unstorable_input", "extra")


async def test_a_body_that_is_not_json_is_refused_with_400_in_the_error_shape(api: Api) -> None:
    response = await api.post_content(f"{caller_path()}/live/conv-1/turns", b"\xff\xfeyy#")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_body"


class CountedBody:
    """A request body of `chunks` chunks of 16 kB, counting how many the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * 16_384


async def test_a_huge_body_without_a_key_is_refused_with_413_once_it_passes_the_limit(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = CountedBody(chunks=12_800)  # 200 MB

    response = await client.post(f"/v1{caller_path()}/live/conv-1/turns", content=body)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert body.pulled * 16_384 <= settings.max_body_bytes + 16_384


async def test_a_body_declared_over_the_limit_is_refused_with_413_unread(client: httpx.AsyncClient) -> None:
    body = CountedBody(chunks=12_800)
    declared = {"content-length": str(12_800 * 16_384)}

    response = await client.post(f"/v1{caller_path()}/live/conv-1/turns", content=body, headers=declared)

    assert response.status_code == 413
    assert body.pulled == 0


async def test_the_callers_calls_are_listed_newest_first_with_their_summaries(
    phone: Phone, api: Api, settings: Settings
) -> None:
    first, _ = await phone.call("My account number is 99812.")
    second, _ = await phone.call("I moved to Berlin.")
    await summarise_queued(settings)

    calls = (await api.get(f"{caller_path()}/calls")).json()["calls"]

    assert [(c["platform"], c["call_id"]) for c in calls] == [("seed", second), ("seed", first)]
    assert calls[0]["summary"] == "The caller said: I moved to Berlin."
    assert calls[0]["turn_count"] == 3


async def test_a_voipbin_calls_transcript_is_read_whatever_its_id(voipbin: Voipbin) -> None:
    call = ScriptedCall(call_id="vb call 1")  # no id this API gives its own calls may hold a space
    await voipbin.actions(call)
    await voipbin.deliver_all([call.hangup()])

    path = caller_path(bot=call.bot, caller=call.caller)
    response = await Api(voipbin.http).get(f"{path}/calls/voipbin/vb%20call%201")

    assert response.status_code == 200, response.text
    assert response.json()["call"]["call_id"] == "vb call 1"


async def test_a_transcript_path_of_slashes_is_not_found_not_redirected_to_the_list(api: Api) -> None:
    response = await api.get(f"{caller_path()}/calls/%2F/%2F")

    assert response.status_code == 404


async def test_a_calls_transcript_is_read(phone: Phone, api: Api) -> None:
    call_id, heard = await phone.call("My account number is 99812.")

    response = await api.get(f"{caller_path()}/calls/seed/{call_id}")

    assert response.status_code == 200, response.text
    turns = response.json()["turns"]
    assert [(t["seq"], t["role"], t["text"]) for t in turns] == [
        (1, "bot", heard[0]),
        (2, "caller", "My account number is 99812."),
        (3, "bot", heard[1]),
    ]


async def test_the_export_holds_the_caller_their_summary_and_every_call_with_every_turn(
    phone: Phone, api: Api, settings: Settings
) -> None:
    first, _ = await phone.call("My account number is 99812.")
    second, _ = await phone.call("I moved to Berlin.")
    await summarise_queued(settings)

    body = (await api.get(f"{caller_path()}/export")).json()

    assert body["caller"]["call_count"] == 2
    assert "99812" in body["caller"]["summary"]
    assert body["caller"]["profile"] == {"open_issues": ["I moved to Berlin."]}
    assert [c["call"]["call_id"] for c in body["calls"]] == [first, second]
    assert [t["text"] for t in body["calls"][1]["turns"]][1] == "I moved to Berlin."


async def test_an_unknown_caller_is_404(api: Api) -> None:
    for path in ("/calls", "/export", "/calls/seed/nope"):
        response = await api.get(caller_path() + path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


async def test_a_bot_scoped_key_reads_its_own_bots_callers(phone: Phone, client: httpx.AsyncClient) -> None:
    await phone.call("My account number is 99812.")

    response = await Api(client, key=BOT_A_KEY).get(f"{caller_path(bot=BOT_A)}/calls")

    assert response.status_code == 200
    assert len(response.json()["calls"]) == 1


async def test_a_bot_scoped_key_gets_404_not_403_for_another_bots_caller(
    client: httpx.AsyncClient, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    await Phone(client, caller=CALLER, bot=BOT_B).call("My secret word is pineapple.")
    scoped = Api(client, key=BOT_A_KEY)
    unknown = await Api(client).get(f"{caller_path(bot=BOT_A, caller='+14155559999')}/calls")

    for method, path in (
        ("get", "/calls"),
        ("get", "/export"),
        ("get", "/context"),
        ("get", "/brief"),
        ("post", "/live/x-1/turns"),
        ("delete", ""),
    ):
        url = caller_path(bot=BOT_B) + path
        if method == "post":
            response = await scoped.post(url, {"role": "caller", "text": "hi"})
        else:
            response = await getattr(scoped, method)(url)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"] == unknown.json()["error"] == "not_found"
    assert len(await sql("SELECT id FROM calls")) == 1  # the DELETE erased nothing


async def test_the_integrator_api_is_documented_with_examples_and_errors(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    context = spec["paths"]["/v1/bots/{bot_number}/callers/{caller_number}/context"]["get"]
    assert {"401", "404", "422"} <= set(context["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["MemoryContext"]["examples"]
    assert schemas["ErasureReceiptOut"]["examples"]
    assert schemas["MemoryBrief"]["examples"]
    assert "delete" in spec["paths"]["/v1/bots/{bot_number}/callers/{caller_number}"]


async def test_a_call_of_another_bot_cannot_be_ended_through_a_bot_scoped_key(
    client: httpx.AsyncClient, sql: Callable[..., Any]
) -> None:
    admin, scoped = Api(client), Api(client, key=BOT_A_KEY)
    await admin.post(f"{caller_path(bot=BOT_B)}/live/shared-id/turns", {"role": "caller", "text": "Hello."})

    response = await scoped.post(f"{caller_path(bot=BOT_A)}/live/shared-id/end")

    assert response.status_code == 404
    assert await sql("SELECT id FROM calls") == []


async def test_numbers_in_the_path_may_be_url_encoded(phone: Phone, api: Api) -> None:
    await phone.call("My account number is 99812.")

    response = await api.get(caller_path(bot="%2B14155550000", caller="%2B14155551234") + "/calls")

    assert response.status_code == 200, response.text
    assert len(response.json()["calls"]) == 1
