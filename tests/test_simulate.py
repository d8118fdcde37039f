"""`callmemory simulate`: a call from a terminal, played against a running service or one it starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callmemory.app import create_app
from callmemory.settings import Settings
from support.cli import Ran, callmemory, cli_env
from support.llm import FakeLLM
from support.serving import free_port, served

Rows = Callable[..., Any]
CALLER = "+15551234567"
BOT = "+15559876543"


def bot_lines(ran: Ran) -> list[str]:
    assert ran.status == 0, ran.stderr
    return [line.removeprefix("bot: ") for line in ran.stdout.splitlines() if line.startswith("bot: ")]


async def test_a_second_call_against_a_running_service_is_greeted_with_the_first_calls_topic(
    settings: Settings, llm: FakeLLM
) -> None:
    env = cli_env(settings)
    async with served(create_app(settings)) as url:
        first = await callmemory(env, "simulate", "--url", url, stdin="My order 4417 never arrived.\n")
        second = await callmemory(env, "simulate", "--url", url, stdin="Any news?\n")

    assert bot_lines(first) == ["Hello! How can I help you today?", "You said: My order 4417 never arrived."]
    greeting, answer = bot_lines(second)
    assert "My order 4417 never arrived" in greeting
    assert answer == "You said: Any news?"
    assert "call ended: archived" in second.stderr


async def test_the_embedded_service_in_voipbin_format_remembers_the_caller_across_runs(
    settings: Settings, llm: FakeLLM, sql: Rows
) -> None:
    env = cli_env(settings)
    call = ["simulate", "--embedded", "--format", "voipbin", "--from", CALLER, "--to", BOT]

    first = await callmemory(env, *call, stdin="Where is my parcel?\n")
    second = await callmemory(env, *call, stdin="Hello again.\n")

    assert bot_lines(first) == ["Hello! How can I help you today?", "You said: Where is my parcel?"]
    assert "Where is my parcel" in bot_lines(second)[0]
    rows = await sql("SELECT platform, turn_count FROM calls ORDER BY started_at")
    assert [(r.platform, r.turn_count) for r in rows] == [("voipbin", 3), ("voipbin", 3)]


async def test_slash_hangup_ends_the_call_and_later_lines_are_not_sent(
    settings: Settings, llm: FakeLLM, sql: Rows
) -> None:
    async with served(create_app(settings)) as url:
        ran = await callmemory(
            cli_env(settings), "simulate", "--url", url, stdin="First thing.\n\n/hangup\nNever said.\n"
        )

    assert bot_lines(ran)[1:] == ["You said: First thing."]
    rows = await sql("SELECT t.text FROM turns t WHERE t.role = 'caller'")
    assert [r.text for r in rows] == ["First thing."]


async def test_a_url_where_nothing_answers_fails_with_a_clear_message(settings: Settings) -> None:
    ran = await callmemory(cli_env(settings), "simulate", "--url", f"http://127.0.0.1:{free_port()}")

    assert ran.status == 1
    assert "did not answer" in ran.stderr
