"""Per-bot-number VoIPBin settings come from configuration, with defaults for numbers not listed."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import Settings
from support.cli import callmemory, cli_env
from support.voipbin import AI_ID


def test_bots_are_read_from_a_json_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    bots = {"+15559876543": {"mode": "managed_ai", "ai_id": AI_ID, "language": "de-DE"}}
    monkeypatch.setenv("CALLMEMORY_VOIPBIN_BOTS", json.dumps(bots))

    bot = Settings(_env_file=None).voipbin_bot("+15559876543")

    assert (bot.mode, bot.ai_id, bot.language) == ("managed_ai", AI_ID, "de-DE")


def test_a_number_not_listed_gets_the_own_llm_defaults() -> None:
    assert Settings(_env_file=None).voipbin_bot("+15550000000") == VoipbinBot(mode="own_llm")


def test_a_managed_ai_bot_without_an_ai_id_is_refused() -> None:
    with pytest.raises(ValidationError, match="ai_id"):
        Settings(_env_file=None, voipbin_bots={"+15559876543": {"mode": "managed_ai"}})


def test_a_managed_ai_bot_whose_ai_id_is_not_a_uuid_is_refused_naming_the_setting_and_the_bot() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, voipbin_bots={"+15559876543": {"mode": "managed_ai", "ai_id": "my-bot"}})

    assert "CALLMEMORY_VOIPBIN_BOTS" in str(refused.value)
    assert "the ai_id of bot +15559876543 is not a UUID" in str(refused.value)


async def test_serve_refuses_to_start_with_a_non_uuid_ai_id_without_printing_secrets(
    settings: Settings,
) -> None:
    access_key = "vb_" + "s3cret" * 5
    bots = json.dumps({"+15559876543": {"mode": "managed_ai", "ai_id": "my-bot"}})
    env = cli_env(settings, CALLMEMORY_VOIPBIN_BOTS=bots, CALLMEMORY_VOIPBIN_ACCESS_KEY=access_key)

    ran = await callmemory(env, "serve", "--port", "0")

    assert ran.status != 0
    assert "CALLMEMORY_VOIPBIN_BOTS" in ran.stderr
    assert "+15559876543" in ran.stderr
    assert access_key not in ran.stderr + ran.stdout


def test_a_bot_number_that_is_not_e164_is_refused() -> None:
    with pytest.raises(ValidationError, match="not an E"):
        Settings(_env_file=None, voipbin_bots={"5559876543": {}})


def test_a_blank_webhook_secret_means_unsigned_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMEMORY_VOIPBIN_WEBHOOK_SECRET", "")

    assert Settings(_env_file=None).voipbin_webhook_secret is None
