"""Per-bot-number VoIPBin settings come from configuration, with defaults for numbers not listed."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from callmemory.settings import Settings, VoipbinBot


def test_bots_are_read_from_a_json_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    bots = {"+15559876543": {"mode": "managed_ai", "ai_id": "ai-1", "language": "de-DE"}}
    monkeypatch.setenv("CALLMEMORY_VOIPBIN_BOTS", json.dumps(bots))

    bot = Settings(_env_file=None).voipbin_bot("+15559876543")

    assert (bot.mode, bot.ai_id, bot.language) == ("managed_ai", "ai-1", "de-DE")


def test_a_number_not_listed_gets_the_own_llm_defaults() -> None:
    assert Settings(_env_file=None).voipbin_bot("+15550000000") == VoipbinBot(mode="own_llm")


def test_a_managed_ai_bot_without_an_ai_id_is_refused() -> None:
    with pytest.raises(ValidationError, match="ai_id"):
        Settings(_env_file=None, voipbin_bots={"+15559876543": {"mode": "managed_ai"}})


def test_a_bot_number_that_is_not_e164_is_refused() -> None:
    with pytest.raises(ValidationError, match="not an E"):
        Settings(_env_file=None, voipbin_bots={"5559876543": {}})


def test_a_blank_webhook_secret_means_unsigned_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMEMORY_VOIPBIN_WEBHOOK_SECRET", "")

    assert Settings(_env_file=None).voipbin_webhook_secret is None
