"""`callmemory mcp`: spawned over stdio and driven by the `mcp` client, against the app on a real port."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult, TextContent
from starlette.applications import Starlette

from callmemory.app import create_app
from callmemory.conversation.brief import NEW_CALLER
from callmemory.devtools.local_server import served
from callmemory.settings import Settings
from support.api import ADMIN_KEY, BOT_A, BOT_A_KEY, BOT_B, CALLER
from support.app import summarise_queued
from support.llm import FakeLLM
from support.phone import Phone
from support.serving import free_port
from support.trust import FACT, SPOOF_WORD, genuine_then_spoofed

A = {"bot_number": BOT_A, "caller_number": CALLER}


@pytest.fixture
async def service(settings: Settings, llm: FakeLLM) -> AsyncIterator[str]:
    """The app, served on a free local port; yields its base URL."""
    async with served(create_app(settings)) as url:
        yield url


@pytest.fixture
async def http(service: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service) as client:
        yield client


@asynccontextmanager
async def mcp_server(url: str, key: str = ADMIN_KEY, **env: str) -> AsyncIterator[Client]:
    """`callmemory mcp --url URL` as an MCP client launches it: a child process on stdin/stdout."""
    env["CALLMEMORY_MCP_API_KEY"] = key
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "callmemory.cli", "mcp", "--url", url], env=env
    )
    async with Client(params) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    body: dict[str, Any] = result.structured_content
    assert body is not None
    return body


async def test_the_memory_tool_tells_what_the_caller_said_last_time(
    service: str, http: httpx.AsyncClient, settings: Settings
) -> None:
    await Phone(http).call("My account number is 99812.")
    await summarise_queued(settings)

    async with mcp_server(service) as mcp:
        memory = ok(await mcp.call_tool("caller_memory", A))

    assert (memory["returning"], memory["call_count"]) == (True, 1)
    assert memory["last_topic"] == "My account number is 99812"
    assert memory["summary"].startswith("The caller said: My account number is 99812.")
    assert 'Last time they said: "My account number is 99812"' in memory["brief"]


async def test_the_calls_tool_lists_the_call_with_its_summary(
    service: str, http: httpx.AsyncClient, settings: Settings
) -> None:
    call_id, _ = await Phone(http).call("My account number is 99812.")
    await summarise_queued(settings)

    async with mcp_server(service) as mcp:
        listed = ok(await mcp.call_tool("recent_calls", {**A, "limit": 5}))

    assert [(c["call_id"], c["summary"]) for c in listed["calls"]] == [
        (call_id, "The caller said: My account number is 99812.")
    ]


async def test_the_search_tool_finds_a_detail_from_an_early_call(
    service: str, http: httpx.AsyncClient, settings: Settings
) -> None:
    call_id, _ = await Phone(http).call("The serial number on my dishwasher is DW-4471-X.")
    await Phone(http).call("The weather is lovely.")

    async with mcp_server(service) as mcp:
        found = ok(await mcp.call_tool("search_calls", {**A, "query": "dishwasher serial"}))

    caller_said = [(r["call_id"], r["text"]) for r in found["results"] if r["role"] == "caller"]
    assert caller_said == [(call_id, "The serial number on my dishwasher is DW-4471-X.")]


async def test_erasing_returns_the_receipt_and_then_nothing_is_remembered(
    service: str, http: httpx.AsyncClient, sql: Callable[..., Any]
) -> None:
    await Phone(http).call("My account number is 99812.")

    async with mcp_server(service) as mcp:
        receipt = ok(await mcp.call_tool("erase_caller", A))
        memory = ok(await mcp.call_tool("caller_memory", A))
        calls = await mcp.call_tool("recent_calls", A)

    assert (receipt["caller_number"], receipt["deleted"]["calls"], receipt["deleted"]["turns"]) == (
        CALLER,
        1,
        3,
    )
    assert (memory["returning"], memory["brief"]) == (False, NEW_CALLER)
    assert calls.is_error
    assert text_of(calls).endswith(
        f"no such caller: nothing is stored about {CALLER} calling {BOT_A} that this API key may see"
    )
    assert await sql("SELECT id FROM calls") == []


async def test_a_bot_scoped_key_cannot_see_or_erase_another_bots_caller(
    service: str, http: httpx.AsyncClient, sql: Callable[..., Any]
) -> None:
    await Phone(http, caller=CALLER, bot=BOT_B).call("My secret word is pineapple.")
    other_bots = {"bot_number": BOT_B, "caller_number": CALLER}

    async with mcp_server(service, key=BOT_A_KEY) as mcp:
        results = [await mcp.call_tool(tool, other_bots) for tool in ("caller_memory", "recent_calls")]
        results.append(await mcp.call_tool("search_calls", {**other_bots, "query": "secret word"}))
        results.append(await mcp.call_tool("erase_caller", other_bots))

    for result in results:
        assert result.is_error
        assert "no such caller" in text_of(result)
        assert "pineapple" not in text_of(result)
    assert len(await sql("SELECT id FROM calls")) == 1  # the erasure was refused


async def test_a_refused_key_is_a_tool_error_that_names_the_setting(service: str) -> None:
    async with mcp_server(service, key="not-a-key-0123456789abcdefghij") as mcp:
        result = await mcp.call_tool("caller_memory", A)

    assert result.is_error
    assert "refused the API key" in text_of(result)
    assert "CALLMEMORY_MCP_API_KEY" in text_of(result)


@pytest.mark.parametrize("number", ["12ab", "not/a number"])
async def test_a_bad_number_is_a_tool_error_that_asks_for_e164(service: str, number: str) -> None:
    async with mcp_server(service) as mcp:
        result = await mcp.call_tool("caller_memory", {"bot_number": BOT_A, "caller_number": number})

    assert result.is_error
    assert "invalid `caller_number`" in text_of(result)
    assert "E.164" in text_of(result)


async def test_a_number_holding_a_nul_is_a_tool_error_that_names_the_field(service: str) -> None:
    async with mcp_server(service) as mcp:
        result = await mcp.call_tool("caller_memory", {**A, "caller_number": "+1415555\u00001234"})

    assert result.is_error
    assert "invalid `caller_number`: it holds a NUL character" in text_of(result)


async def test_an_unreachable_service_is_a_tool_error_and_the_server_keeps_serving(
    settings: Settings,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    async with mcp_server(nowhere) as mcp:
        first = await mcp.call_tool("caller_memory", A)
        second = await mcp.call_tool("recent_calls", A)

    for result in (first, second):
        assert result.is_error
        assert f"callmemory is not reachable at {nowhere}" in text_of(result)


async def test_a_url_that_is_not_callmemory_is_a_tool_error_that_says_so(settings: Settings) -> None:
    async with (
        served(Starlette()) as elsewhere,  # answers 404 to everything
        mcp_server(elsewhere) as mcp,
    ):
        result = await mcp.call_tool("recent_calls", A)

    assert result.is_error
    assert "is CALLMEMORY_MCP_URL a callmemory service" in text_of(result)


async def test_a_service_that_does_not_answer_is_a_tool_error(settings: Settings) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with mcp_server(url, CALLMEMORY_MCP_TIMEOUT_S="0.2") as mcp:
            result = await mcp.call_tool("caller_memory", A)

    assert result.is_error
    assert f"callmemory at {url} did not answer in time" in text_of(result)


async def test_the_tools_describe_themselves_and_ask_for_e164_numbers(settings: Settings) -> None:
    async with mcp_server("http://127.0.0.1:1") as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}

    assert set(tools) == {"caller_memory", "recent_calls", "search_calls", "erase_caller", "verify_caller"}
    for tool in tools.values():
        assert tool.description
        assert tool.output_schema is not None
        numbers = tool.input_schema["properties"]
        assert "E.164" in numbers["bot_number"]["description"]
        assert "E.164" in numbers["caller_number"]["description"]
    assert tools["caller_memory"].annotations is not None
    assert tools["caller_memory"].annotations.read_only_hint is True
    assert tools["erase_caller"].annotations is not None
    assert tools["erase_caller"].annotations.destructive_hint is True


# -- caller trust: the app under CALLMEMORY_DISCLOSURE=verified -------------------------------------
@pytest.fixture
async def guarded_service(guarded_settings: Settings, llm: FakeLLM) -> AsyncIterator[str]:
    async with served(create_app(guarded_settings)) as url:
        yield url


async def test_the_memory_and_search_tools_hold_nothing_an_unverified_call_said(
    guarded_service: str, guarded_settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=guarded_service) as http:
        await genuine_then_spoofed(Phone(http))
    await summarise_queued(guarded_settings)

    async with mcp_server(guarded_service) as mcp:
        memory = ok(await mcp.call_tool("caller_memory", A))
        found = ok(await mcp.call_tool("search_calls", {**A, "query": "refund account 99999"}))

    assert "88213" in memory["brief"]
    assert SPOOF_WORD not in str(memory)
    assert found["results"] == []


async def test_the_verify_tool_opens_the_memory_to_a_live_call(guarded_service: str, llm: FakeLLM) -> None:
    async with httpx.AsyncClient(base_url=guarded_service) as http:
        phone = Phone(http)
        await phone.call(FACT, verified=True)
        call_id, _ = await phone.ring()

        async with mcp_server(guarded_service) as mcp:
            verified = ok(await mcp.call_tool("verify_caller", {**A, "call_id": call_id, "platform": "seed"}))
            again = ok(await mcp.call_tool("verify_caller", {**A, "call_id": call_id, "platform": "seed"}))
        await phone.say(call_id, "What did I tell you last time?")

    assert (verified, again) == ({"status": "verified"}, {"status": "already_verified"})
    assert FACT in llm.prompt_text()


async def test_the_verify_tool_names_a_call_that_is_not_live(guarded_service: str) -> None:
    async with mcp_server(guarded_service) as mcp:
        result = await mcp.call_tool("verify_caller", {**A, "call_id": "nope", "platform": "seed"})

    assert result.is_error
    assert "nope" in text_of(result)
