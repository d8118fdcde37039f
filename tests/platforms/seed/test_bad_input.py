"""Bad input gets a 4xx naming the problem, never a 500, and nothing already accepted is lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from callmemory.settings import Settings
from support.app import running
from support.phone import Phone

CALLER = "+14155551234"


async def post_escaped(http: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    """As a platform may send it: non-ASCII characters as `\\u` escapes, which can spell a lone surrogate."""
    headers = {"content-type": "application/json"}
    return await http.post("/webhook/call", content=json.dumps(event), headers=headers)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) >= {"error", "detail"}, body
    return body


async def test_malformed_json_is_refused_with_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/call",
        content=b'{"type": "call.ringing", "call_id": ',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert error_of(response)["error"] == "malformed_body"
    assert "not valid JSON" in error_of(response)["detail"]


async def test_a_json_body_that_is_not_an_object_is_refused_with_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhook/call", json=["call.ringing"])

    assert response.status_code == 400


@pytest.mark.parametrize("missing", ["type", "call_id", "from"])
async def test_a_missing_required_field_is_named_in_a_422(client: httpx.AsyncClient, missing: str) -> None:
    event = {"type": "call.ringing", "call_id": "c-1", "from": CALLER, "to": "+14155550000"}
    del event[missing]

    response = await client.post("/webhook/call", json=event)

    assert response.status_code == 422
    assert error_of(response)["field"] == missing


@pytest.mark.parametrize("number", ["hello", "+1234", "", "   ", "+1415555123456789"])
async def test_a_from_that_is_not_a_phone_number_is_refused_with_422(
    client: httpx.AsyncClient, number: str
) -> None:
    response = await client.post(
        "/webhook/call", json={"type": "call.ringing", "call_id": "c-1", "from": number, "to": "+14155550000"}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "from"


async def test_a_from_of_the_wrong_json_type_is_refused_with_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/call", json={"type": "call.ringing", "call_id": "c-1", "from": 14155551234}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "from"


async def test_speech_for_a_call_that_never_rang_is_refused_with_409(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhook/call",
        json={"type": "call.speech_recognized", "call_id": "never-rang", "from": CALLER, "speech": "Hello?"},
    )

    assert response.status_code == 409
    assert error_of(response)["error"] == "call_not_started"


@pytest.mark.parametrize("speech", ["", "   \n\t "])
async def test_empty_speech_is_refused_with_422(phone: Phone, speech: str) -> None:
    call_id, _ = await phone.ring()

    response = await phone.send(
        {"type": "call.speech_recognized", "call_id": call_id, "from": CALLER, "speech": speech}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "speech"


async def test_over_long_speech_is_refused_with_422_and_the_call_goes_on(
    phone: Phone, settings: Settings, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.ring()
    await phone.say(call_id, "First question.")

    too_long = "word " * (settings.max_speech_chars // 5 + 1)
    response = await phone.send(
        {"type": "call.speech_recognized", "call_id": call_id, "from": CALLER, "speech": too_long}
    )
    await phone.say(call_id, "Second question.")
    await phone.hang_up(call_id)

    assert response.status_code == 422
    assert "at most" in error_of(response)["detail"]
    said = [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller' ORDER BY seq")]
    assert said == ["First question.", "Second question."]


async def test_a_body_over_the_size_limit_is_refused_with_413(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    big = {"type": "call.ringing", "call_id": "c-1", "from": CALLER, "pad": "x" * settings.max_body_bytes}

    response = await client.post("/webhook/call", json=big)

    assert response.status_code == 413
    assert error_of(response)["error"] == "payload_too_large"


async def test_a_chunked_body_over_the_size_limit_is_refused_with_413(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    async def chunks() -> Any:
        for _ in range(settings.max_body_bytes // 1024 + 2):
            yield b" " * 1024

    response = await client.post(
        "/webhook/call", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413


async def test_an_unknown_event_type_is_acknowledged_with_200_and_ignored(
    client: httpx.AsyncClient, sql: Callable[..., Any]
) -> None:
    response = await client.post("/webhook/call", json={"type": "call.dtmf", "call_id": "c-1", "digits": "5"})

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert await sql("SELECT * FROM callers") == []


async def test_speech_after_hangup_is_refused_with_409(phone: Phone) -> None:
    call_id, _ = await phone.call("Thanks, bye.")

    response = await phone.send(
        {"type": "call.speech_recognized", "call_id": call_id, "from": CALLER, "speech": "Wait!"}
    )

    assert response.status_code == 409
    assert error_of(response)["error"] == "call_already_ended"


async def test_speech_from_another_number_than_the_callers_is_refused_with_409(phone: Phone) -> None:
    call_id, _ = await phone.ring()

    response = await phone.send(
        {"type": "call.speech_recognized", "call_id": call_id, "from": "+14155559999", "speech": "Hi"}
    )

    assert response.status_code == 409
    assert error_of(response)["error"] == "caller_mismatch"


async def test_ringing_without_a_bot_number_and_no_default_is_refused_with_422(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/webhook/call", json={"type": "call.ringing", "call_id": "c-1", "from": CALLER}
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "to"


async def test_ringing_without_a_bot_number_uses_the_configured_default(settings: Settings) -> None:
    with_default = settings.model_copy(update={"default_bot_number": "+14155550000"})
    async with running(with_default) as client:
        phone = Phone(client, bot=None)
        _call_id, greeting = await phone.ring()

    assert greeting == settings.greeting_new


@pytest.mark.parametrize("call_id", ["", "has space", "x" * 201])
async def test_an_unusable_call_id_is_refused_with_422(client: httpx.AsyncClient, call_id: str) -> None:
    response = await client.post(
        "/webhook/call",
        json={"type": "call.ringing", "call_id": call_id, "from": CALLER, "to": "+14155550000"},
    )

    assert response.status_code == 422
    assert error_of(response)["field"] == "call_id"


async def test_an_unknown_path_answers_404_in_the_same_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")

    assert response.status_code == 404
    assert error_of(response)["error"] == "not_found"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("speech", "My order\u0000 4417", "a NUL character"),
        ("speech", "My order \ud800", "a lone surrogate"),
        ("event_id", "e\u0000", "a NUL character"),
    ],
)
async def test_speech_holding_what_no_store_can_hold_is_refused_with_422_naming_the_field(
    phone: Phone, field: str, value: str, named: str
) -> None:
    call_id, _ = await phone.ring()
    event = {"type": "call.speech_recognized", "call_id": call_id, "from": CALLER, "speech": "Hi"}
    event[field] = value

    response = await post_escaped(phone.http, event)

    assert response.status_code == 422
    assert error_of(response)["error"] == "unstorable_input"
    assert error_of(response)["field"] == field
    assert named in error_of(response)["detail"]


async def test_a_hangup_reason_holding_a_nul_is_refused_and_the_call_is_archived_by_the_next_hangup(
    phone: Phone, sql: Callable[..., Any]
) -> None:
    call_id, _ = await phone.ring()
    await phone.say(call_id, "My order 4417 never arrived.")

    hangup = {"type": "call.hangup", "call_id": call_id, "from": CALLER}
    refused = await phone.send({**hangup, "reason": "\u0000"})
    archived = await phone.send(hangup)

    assert (refused.status_code, error_of(refused)["field"]) == (422, "reason")
    assert archived.json() == {"status": "archived"}
    said = [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller'")]
    assert said == ["My order 4417 never arrived."]


@pytest.mark.parametrize("depth", [33, 20_000])
async def test_json_nested_deeper_than_the_limit_is_refused_with_422_naming_the_field(
    client: httpx.AsyncClient, depth: int
) -> None:
    body = '{"type": "call.dtmf", "call_id": "c-1", "digits": ' + "[" * depth + "]" * depth + "}"

    response = await client.post("/webhook/call", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert error_of(response)["error"] == "unstorable_input"
    assert error_of(response)["field"] == "digits"
    assert "deeper than 32 levels" in error_of(response)["detail"]


async def test_json_nested_to_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    body = '{"type": "call.dtmf", "call_id": "c-1", "digits": ' + "[" * 31 + "]" * 31 + "}"

    response = await client.post("/webhook/call", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
