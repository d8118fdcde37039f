"""`callmemory simulate --format twilio`: a call placed as Twilio places it, from a terminal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from callmemory.app import create_app
from callmemory.devtools.local_server import served
from callmemory.settings import Settings
from support.cli import Ran, callmemory, cli_env
from support.llm import FakeLLM
from support.twilio import PUBLIC_URL, TOKEN

Rows = Callable[..., Any]
CALL = ["simulate", "--format", "twilio", "--from", "+15551234567", "--to", "+15559876543"]


def bot_lines(ran: Ran) -> list[str]:
    assert ran.status == 0, ran.stderr
    return [line.removeprefix("bot: ") for line in ran.stdout.splitlines() if line.startswith("bot: ")]


async def test_the_service_simulate_starts_itself_remembers_a_twilio_caller_across_runs(
    settings: Settings, llm: FakeLLM, sql: Rows, tmp_path: Path
) -> None:
    env = cli_env(settings)

    # In a directory of its own: the default data directory is relative, and its lock is one per directory.
    first = await callmemory(env, *CALL, "--embedded", stdin="Where is my parcel?\n", cwd=tmp_path)
    second = await callmemory(env, *CALL, "--embedded", stdin="Hello again.\n", cwd=tmp_path)

    assert bot_lines(first) == ["Hello! How can I help you today?", "You said: Where is my parcel?"]
    assert "Where is my parcel" in bot_lines(second)[0]
    assert "call ended: completed" in second.stderr
    rows = await sql("SELECT platform, end_reason, turn_count FROM calls ORDER BY started_at")
    assert [tuple(r) for r in rows] == [("twilio", "completed", 3)] * 2


async def test_against_a_running_service_behind_a_public_url_it_signs_what_twilio_would_request(
    settings: Settings, llm: FakeLLM
) -> None:
    env = cli_env(settings, CALLMEMORY_TWILIO_AUTH_TOKEN=TOKEN, CALLMEMORY_TWILIO_PUBLIC_URL=PUBLIC_URL)
    service = settings.model_copy(
        update={"twilio_auth_token": SecretStr(TOKEN), "twilio_public_url": PUBLIC_URL}
    )

    async with served(create_app(service)) as url:
        ran = await callmemory(env, *CALL, "--url", url, stdin="Is my refund through?\n")

    assert bot_lines(ran) == ["Hello! How can I help you today?", "You said: Is my refund through?"]


async def test_against_a_running_service_without_its_auth_token_it_says_what_to_set(
    settings: Settings, llm: FakeLLM
) -> None:
    async with served(create_app(settings)) as url:
        ran = await callmemory(cli_env(settings), *CALL, "--url", url)

    assert ran.status == 1
    assert "CALLMEMORY_TWILIO_AUTH_TOKEN" in ran.stderr
