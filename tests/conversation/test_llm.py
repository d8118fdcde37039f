"""The LLM through the real openai SDK, faked only at HTTP: time limit, failures, offline mode."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from callmemory.devtools.stub_llm import hold
from callmemory.settings import Settings
from support.app import running, summarise_queued
from support.llm import FakeLLM
from support.metrics import scrape
from support.phone import Phone


async def test_the_llm_request_uses_the_configured_model_and_max_tokens(
    settings: Settings, llm: FakeLLM
) -> None:
    async with running(settings.model_copy(update={"llm_model": "my-model", "llm_max_tokens": 77})) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        await phone.say(call_id, "Hello?")

    request = llm.requests[-1]
    assert (request["model"], request["max_tokens"]) == ("my-model", 77)
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][0]["content"].startswith(settings.system_prompt)


async def test_a_live_answer_asks_for_its_own_max_tokens_whatever_a_summary_asks_for(
    settings: Settings, llm: FakeLLM
) -> None:
    tuned = settings.model_copy(update={"llm_max_tokens": 77, "summary_max_tokens": 555})
    async with running(tuned) as client:
        await Phone(client).call("My router is broken.")
    await summarise_queued(tuned)

    asked = [
        (r["messages"][0]["content"].startswith(tuned.system_prompt), r["max_tokens"]) for r in llm.requests
    ]
    assert asked == [(True, 77), (False, 555)]


async def test_a_slow_llm_gives_the_fallback_line_within_the_time_limit_and_the_turn_is_kept(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    llm.delay_s = 5
    async with running(settings.model_copy(update={"llm_timeout_s": 0.3})) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        answer = await phone.say(call_id, "Are you there?")
        await phone.hang_up(call_id)

    assert answer == settings.fallback_line
    rows = await sql("SELECT role, text, fallback FROM turns ORDER BY seq")
    assert [(r.role, r.text, r.fallback) for r in rows][1:] == [
        ("caller", "Are you there?", False),
        ("bot", settings.fallback_line, True),
    ]


@pytest.mark.parametrize("status", [500, 429, 401])
async def test_a_provider_error_gives_the_fallback_line(
    phone: Phone, llm: FakeLLM, settings: Settings, status: int
) -> None:
    llm.status = status
    call_id, _ = await phone.ring()

    assert await phone.say(call_id, "Hello?") == settings.fallback_line


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_provider_gives_the_fallback_line_counted_as_an_error(
    settings: Settings, free_port: int
) -> None:
    nobody = settings.model_copy(update={"openai_base_url": f"http://127.0.0.1:{free_port}/v1"})
    async with running(nobody) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        answer = await phone.say(call_id, "Hello?")
        seen = await scrape(client)

    assert answer == settings.fallback_line
    assert seen.value("callmemory_llm_fallbacks_total", reason="error") == 1


async def test_an_empty_llm_answer_gives_the_fallback_line(
    phone: Phone, llm: FakeLLM, settings: Settings
) -> None:
    llm.reply = lambda messages: "   "
    call_id, _ = await phone.ring()

    assert await phone.say(call_id, "Hello?") == settings.fallback_line


async def test_an_llm_answer_that_is_not_json_gives_the_fallback_line(
    phone: Phone, llm: FakeLLM, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def proxy_page(request: Request) -> Response:  # a proxy in front of the provider, say
        return PlainTextResponse("<html>upstream is warming up</html>")

    monkeypatch.setattr(llm, "completions", proxy_page)
    call_id, _ = await phone.ring()

    assert await phone.say(call_id, "Hello?") == settings.fallback_line


async def test_a_compressed_llm_answer_is_read_whole(
    phone: Phone, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def gzipped(request: Request) -> Response:  # a provider (or proxy) that compresses its answers
        completion = {"choices": [{"message": {"role": "assistant", "content": "Your order left today."}}]}
        body = gzip.compress(json.dumps(completion).encode())
        return Response(body, media_type="application/json", headers={"content-encoding": "gzip"})

    monkeypatch.setattr(llm, "completions", gzipped)
    call_id, _ = await phone.ring()

    assert await phone.say(call_id, "Where is my order?") == "Your order left today."


async def test_without_an_api_key_the_bot_says_it_is_offline_and_still_records(
    settings: Settings, llm: FakeLLM, sql: Callable[..., Any]
) -> None:
    offline = settings.model_copy(update={"openai_api_key": None})
    async with running(offline) as client:
        phone = Phone(client)
        call_id, _ = await phone.ring()
        answer = await phone.say(call_id, "Is anyone there?")
        await phone.hang_up(call_id)

    assert "offline" in answer
    assert llm.requests == []
    assert [r.text for r in await sql("SELECT text FROM turns WHERE role = 'caller'")] == ["Is anyone there?"]


async def test_the_current_call_is_sent_as_chat_turns_and_earlier_calls_as_memory(
    phone: Phone, llm: FakeLLM
) -> None:
    await phone.call("I want to change my address.")
    call_id, _ = await phone.ring()
    await phone.say(call_id, "It's about the address again.")

    system, *chat = llm.requests[-1]["messages"]
    assert "I want to change my address." in system["content"]
    assert chat[-1] == {"role": "user", "content": "It's about the address again."}
    assert all(m["content"] != "I want to change my address." for m in chat)


def test_an_api_key_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://llm.example/v1")

    settings = Settings(_env_file=None)

    assert settings.openai_api_key == SecretStr("sk-from-env")
    assert settings.openai_base_url == "http://llm.example/v1"


async def test_a_stub_that_keeps_no_requests_still_answers(settings: Settings, llm: FakeLLM) -> None:
    llm.keep_requests = False
    async with running(settings) as client:
        _, (_greeting, answer) = await Phone(client).call("Is anyone there?")

    assert answer == "You said: Is anyone there?"
    assert llm.requests == []


async def test_the_stub_holds_a_request_for_its_whole_delay() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    await hold(0.05)

    assert loop.time() - started >= 0.05
