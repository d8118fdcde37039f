"""The seed webhook is authenticated: a signature of the raw body with a timestamp, or a bearer token."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis

from callmemory.app import create_app
from callmemory.devtools.local_server import served
from callmemory.platforms.seed import signing
from callmemory.settings import Settings
from support.app import production_settings, running
from support.cli import callmemory, cli_env
from support.llm import FakeLLM
from support.phone import Phone, said

SECRET = "whsec-seed-0123456789"
TOKEN = "seed-bearer-token-0123456789"
RINGING = {"type": "call.ringing", "call_id": "c-auth", "from": "+14155551234", "to": "+14155550000"}

# Computed once by `printf '%s' "1767225600.$BODY" | openssl dgst -sha256 -hmac whsec-seed-0123456789`;
# pinned so that a change in what is fed to HMAC (re-serialised JSON, another separator) cannot pass.
BODY = b'{"type":"call.hangup","call_id":"c-1","from":"+14155551234"}'
AT = 1767225600
PINNED = f"t={AT},v1=89a86367ce5671be3212e4cec2b8e966fe400d5940786a0c610d30284336daea"


def problem(header: str | None, *, now: float = AT, body: bytes = BODY) -> str | None:
    return signing.signature_problem(SECRET.encode(), body, header, now=now, tolerance_s=300)


# -- the signature ----------------------------------------------------------------------------------
def test_the_signature_is_hmac_sha256_of_timestamp_dot_raw_body() -> None:
    assert signing.sign(SECRET.encode(), BODY, AT) == PINNED
    assert problem(PINNED) is None


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=" + "0" * 64, "not of the form"),
        (f"t=soon,v1={'0' * 64}", "not of the form"),
        (f"t=\u00b2,v1={'0' * 64}", "not of the form"),
        (f"t={'9' * 400},v1={'0' * 64}", "not of the form"),
        (f"t={AT},t={AT},v1={'0' * 64}", "not of the form"),
        (f"t={AT}", "not of the form"),
        (f"t={AT},v1={'0' * 64}", "does not match"),
        (signing.sign(b"another-secret", BODY, AT), "does not match"),
        (PINNED.replace(f"t={AT}", f"t={AT + 1}"), "does not match"),
    ],
)
def test_a_bad_signature_names_its_problem(header: str | None, why: str) -> None:
    assert why in (problem(header) or "")


def test_a_signature_of_another_body_does_not_match() -> None:
    assert "does not match" in (problem(PINNED, body=BODY + b" ") or "")


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_correct_signature_outside_the_tolerance_is_refused(offset: int) -> None:
    assert "timestamp" in (problem(PINNED, now=AT - offset) or "")


def test_any_of_several_signatures_may_match_while_a_secret_is_rotated() -> None:
    rotating = f"{signing.sign(b'the-old-secret', BODY, AT)},v1={PINNED.split('v1=')[1]}"
    assert problem(rotating) is None


# -- the webhook ------------------------------------------------------------------------------------
@pytest.fixture
async def guarded(settings: Settings, llm: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    update = {"webhook_secret": SecretStr(SECRET), "webhook_token": SecretStr(TOKEN)}
    async with running(settings.model_copy(update=update)) as http:
        yield http


async def _stored(redis: Redis, settings: Settings) -> list[str]:
    return [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*")]


async def _post(http: httpx.AsyncClient, body: bytes, **headers: str) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return await http.post("/webhook/call", content=body, headers=headers)


def _signed(event: dict[str, Any], *, at: float | None = None, secret: str = SECRET) -> tuple[bytes, str]:
    body = json.dumps(event).encode()
    return body, signing.sign(secret.encode(), body, int(time.time() if at is None else at))


async def test_a_signed_call_is_answered_and_archived(guarded: httpx.AsyncClient) -> None:
    phone = Phone(guarded, webhook_secret=SECRET)

    _, heard = await phone.call("My order 4417 never arrived.")
    _, greeting = await phone.ring()

    assert heard == ["Hello! How can I help you today?", "You said: My order 4417 never arrived."]
    assert "My order 4417 never arrived" in greeting


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({signing.SIGNATURE_HEADER: "sha256=" + "0" * 64}, "not of the form"),
        ({signing.SIGNATURE_HEADER: f"t={int(time.time())},v1={'0' * 64}"}, "does not match"),
        ({"authorization": "Bearer not-the-token"}, "token is not valid"),
    ],
)
async def test_an_unauthenticated_ringing_is_refused_with_401_and_nothing_is_stored(
    guarded: httpx.AsyncClient, redis: Redis, settings: Settings, headers: dict[str, str], why: str
) -> None:
    response = await _post(guarded, json.dumps(RINGING).encode(), **headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert why in response.json()["detail"]
    assert await _stored(redis, settings) == []


async def test_a_ringing_signed_with_another_secret_is_refused(
    guarded: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    body, header = _signed(RINGING, secret="whsec-someone-else-000")

    response = await _post(guarded, body, **{signing.SIGNATURE_HEADER: header})

    assert (response.status_code, response.json()["error"]) == (401, "unauthorized")
    assert await _stored(redis, settings) == []


async def test_a_ringing_signed_long_ago_is_refused(
    guarded: httpx.AsyncClient, redis: Redis, settings: Settings
) -> None:
    body, header = _signed(RINGING, at=time.time() - settings.webhook_tolerance_s - 5)

    response = await _post(guarded, body, **{signing.SIGNATURE_HEADER: header})

    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"]
    assert await _stored(redis, settings) == []


async def test_a_signed_request_replayed_after_the_tolerance_is_refused(
    settings: Settings, llm: FakeLLM
) -> None:
    # A timestamp is in whole seconds, so a request signed now may already be up to 1 s old: a tolerance
    # of 2 s leaves the first exchange at least 1 s to be delivered, however loaded the machine.
    strict = settings.model_copy(update={"webhook_secret": SecretStr(SECRET), "webhook_tolerance_s": 2.0})
    speech = {"type": "call.speech_recognized", "call_id": "c-replayed", "from": RINGING["from"]}
    async with running(strict) as http:
        phone = Phone(http, webhook_secret=SECRET)
        await phone.ring("c-replayed")
        at = int(time.time())
        body, header = _signed({**speech, "speech": "Cancel my order."}, at=at)
        first = await _post(http, body, **{signing.SIGNATURE_HEADER: header})
        await asyncio.sleep(at + 2.0 + 0.1 - time.time())  # the timestamp is past the tolerance
        replayed = await _post(http, body, **{signing.SIGNATURE_HEADER: header})

    assert first.status_code == 200
    assert replayed.status_code == 401
    assert "timestamp" in replayed.json()["detail"]


async def test_the_bearer_token_is_accepted_instead_of_a_signature(guarded: httpx.AsyncClient) -> None:
    response = await _post(guarded, json.dumps(RINGING).encode(), authorization=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert said(response.json()) == "Hello! How can I help you today?"


async def test_simulate_signs_its_events_when_the_service_has_a_secret(
    settings: Settings, llm: FakeLLM
) -> None:
    signed = settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})
    async with served(create_app(signed)) as url:
        ran = await callmemory(
            cli_env(settings, CALLMEMORY_WEBHOOK_SECRET=SECRET), "simulate", "--url", url, stdin="Hi.\n"
        )

    assert ran.status == 0, ran.stderr
    assert "bot: You said: Hi." in ran.stdout


# -- configuration ----------------------------------------------------------------------------------
def _production(**values: Any) -> Settings:
    return production_settings(**{"webhook_secret": None, **values})


def test_production_refuses_to_start_without_a_webhook_secret() -> None:
    with pytest.raises(ValidationError, match="CALLMEMORY_WEBHOOK_SECRET"):
        _production()


@pytest.mark.parametrize("field", ["webhook_secret", "webhook_token"])
def test_production_refuses_a_short_or_placeholder_webhook_secret(field: str) -> None:
    for weak in ("changeme", "short-secret"):
        with pytest.raises(ValidationError, match="at least 16 characters"):
            _production(**{field: SecretStr(weak)})


@pytest.mark.parametrize("field", ["webhook_secret", "webhook_token"])
def test_production_starts_with_a_webhook_secret_or_token(field: str) -> None:
    assert _production(**{field: SecretStr("y" * 32)}).webhook_authenticated


async def test_an_unauthenticated_webhook_is_announced_at_start(
    settings: Settings, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callmemory"):
        async with running(settings):
            pass
        announced = [r.getMessage() for r in caplog.records if "UNAUTHENTICATED" in r.getMessage()]
        caplog.clear()
        async with running(settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})):
            pass
        signed = [r.getMessage() for r in caplog.records if "UNAUTHENTICATED" in r.getMessage()]

    assert len(announced) == 1
    assert "CALLMEMORY_WEBHOOK_SECRET" in announced[0]
    assert signed == []
