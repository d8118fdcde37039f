"""`callmemory simulate`: a call from a terminal, played against a running service or one it starts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callmemory.app import create_app
from callmemory.devtools.datadir import DataDirLock
from callmemory.devtools.local_server import served
from callmemory.settings import Settings
from support.cli import Ran, callmemory, cli_env
from support.llm import FakeLLM
from support.serving import children_of_data_dir, embedded_data_dir, free_port, unconfigured_env

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
    settings: Settings, llm: FakeLLM, sql: Rows, tmp_path: Path
) -> None:
    env = cli_env(settings)
    call = ["simulate", "--embedded", "--format", "voipbin", "--from", CALLER, "--to", BOT]

    # In a directory of its own: the default data directory is relative, and its lock is one per directory.
    first = await callmemory(env, *call, stdin="Where is my parcel?\n", cwd=tmp_path)
    second = await callmemory(env, *call, stdin="Hello again.\n", cwd=tmp_path)

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


async def test_voipbin_format_against_a_running_service_hears_answers_through_its_talk_api_stand_in(
    voipbin_settings: Settings, llm: FakeLLM
) -> None:
    port = free_port()
    settings = voipbin_settings.model_copy(update={"voipbin_api_url": f"http://127.0.0.1:{port}/v1.0"})
    assert settings.voipbin_fetch_token
    assert settings.voipbin_webhook_secret
    env = cli_env(
        settings,
        CALLMEMORY_VOIPBIN_FETCH_TOKEN=settings.voipbin_fetch_token.get_secret_value(),
        CALLMEMORY_VOIPBIN_WEBHOOK_SECRET=settings.voipbin_webhook_secret.get_secret_value(),
    )
    call = ["simulate", "--format", "voipbin", "--voipbin-api-port", str(port), "--from", CALLER, "--to", BOT]

    async with served(create_app(settings)) as url:
        ran = await callmemory(env, *call, "--url", url, stdin="Is my refund through?\n")

    assert bot_lines(ran) == ["Hello! How can I help you today?", "You said: Is my refund through?"]
    assert "call ended: applied" in ran.stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with embedded_data_dir() as root:
        yield root / "sim"


async def test_with_no_store_configured_it_runs_on_embedded_servers_in_its_data_dir_and_stops_them(
    settings: Settings, llm: FakeLLM, data_dir: Path
) -> None:
    env = {k: v for k, v in cli_env(settings).items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    call = ["simulate", "--embedded", "--data-dir", str(data_dir)]

    first = await callmemory(env, *call, stdin="My order 4417 never arrived.\n")
    second = await callmemory(env, *call, stdin="")

    assert "My order 4417 never arrived" in bot_lines(second)[0]
    assert f"embedded PostgreSQL: {data_dir}" in first.stderr  # mkdtemp: already absolute and resolved
    assert first.stdout.startswith("bot: ")  # status lines stay off the conversation
    assert children_of_data_dir(data_dir) == []


async def test_simulate_embedded_on_a_directory_in_use_is_refused_naming_its_owner(tmp_path: Path) -> None:
    owner = DataDirLock(tmp_path)
    owner.acquire("serve", host="127.0.0.1", port=8123)
    try:
        ran = await callmemory(
            unconfigured_env(), "simulate", "--embedded", "--data-dir", str(tmp_path), stdin="Hello?\n"
        )
    finally:
        owner.release()

    assert ran.status != 0
    assert f"`callmemory serve` (pid {os.getpid()}, port 8123)" in ran.stderr
    assert not (tmp_path / "embedded").exists()
