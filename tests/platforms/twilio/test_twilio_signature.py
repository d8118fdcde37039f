"""Only Twilio may drive a call: X-Twilio-Signature over the public URL, or 403 and nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from callmemory.settings import Settings
from support.app import running
from support.llm import FakeLLM
from support.twilio import PUBLIC_URL, TOKEN, Delivery, TwilioCall, answered, deliver, sign

Rows = Callable[..., Any]


async def _nothing_stored(sql: Rows, redis_keys: list[str]) -> None:
    assert await sql("SELECT * FROM callers") == []
    assert redis_keys == []


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda d: replace(d, signature=None), id="no signature"),
        pytest.param(lambda d: sign(d.url, d.params, token="someone-elses-auth-token"), id="another token"),
        pytest.param(lambda d: replace(d, params={**d.params, "From": "+14155559999"}), id="a field changed"),
    ],
)
async def test_an_incoming_call_not_signed_by_twilio_gets_403_and_nothing_is_stored(
    http: httpx.AsyncClient,
    twilio_settings: Settings,
    sql: Rows,
    redis: Any,
    forged: Callable[[Delivery], Delivery],
) -> None:
    response = await deliver(http, forged(TwilioCall(http).incoming()))

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    await _nothing_stored(sql, [k async for k in redis.scan_iter(match=f"{twilio_settings.redis_prefix}:*")])


async def test_a_speech_result_sent_to_another_turn_than_the_signed_one_is_refused(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    call = await answered(http)
    signed = call.speech("Transfer all my money.")

    response = await deliver(http, replace(signed, url=signed.url.replace("turn=1", "turn=7")))

    assert response.status_code == 403
    assert llm.requests == []


async def test_a_signature_over_the_public_url_is_valid_though_the_request_reaches_another_host(
    http: httpx.AsyncClient,
) -> None:
    assert str(http.base_url) != PUBLIC_URL
    call = TwilioCall(http)

    assert call.incoming().url.startswith(f"{PUBLIC_URL}/")
    assert await call.ring() == "Hello! How can I help you today?"


async def test_a_signature_over_the_url_behind_the_proxy_is_refused_when_a_public_url_is_set(
    http: httpx.AsyncClient,
) -> None:
    call = TwilioCall(http)
    internal = call.incoming().url.replace(PUBLIC_URL, str(http.base_url).rstrip("/"))

    response = await deliver(http, sign(internal, call.incoming().params))

    assert response.status_code == 403


async def test_without_a_public_url_the_url_the_request_arrived_at_is_the_signed_one(
    settings: Settings, llm: FakeLLM
) -> None:
    direct = settings.model_copy(update={"twilio_auth_token": SecretStr(TOKEN)})
    async with running(direct) as client:
        call = TwilioCall(client)
        incoming = call.incoming()
        url = incoming.url.replace(PUBLIC_URL, str(client.base_url).rstrip("/"))

        answer = await call.send(sign(url, incoming.params))

    assert answer.gather.get("action") == f"{str(client.base_url).rstrip('/')}/twilio/gather?turn=1"


async def test_without_an_auth_token_the_twilio_routes_are_off(settings: Settings, llm: FakeLLM) -> None:
    async with running(settings) as client:
        response = await deliver(client, TwilioCall(client).incoming())

    assert response.status_code == 404
    assert "CALLMEMORY_TWILIO_AUTH_TOKEN" in response.json()["detail"]
