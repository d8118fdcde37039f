"""Settings refuse what would be unsafe in production, keep a generated secret stable, and report what
is wrong by environment variable, never by value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from callmemory.core.trust import Disclosure, DisclosurePolicy
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import Settings, describe_errors
from support.app import production_settings
from support.serving import unconfigured_env


def test_production_refuses_a_placeholder_hash_secret() -> None:
    with pytest.raises(ValidationError, match="HASH_SECRET"):
        Settings(
            _env_file=None,
            environment="production",
            hash_secret=SecretStr("changeme"),
            database_url="postgresql://db/x",
            redis_url="redis://r",
        )


def test_production_refuses_to_run_without_database_and_redis_urls() -> None:
    with pytest.raises(ValidationError, match="REDIS_URL"):
        Settings(_env_file=None, environment="production", hash_secret=SecretStr("x" * 32))


def test_production_refuses_to_start_without_a_disclosure_policy_and_says_what_to_choose() -> None:
    with pytest.raises(ValidationError) as error:
        production_settings(disclosure=None)

    [problem] = error.value.errors()
    assert problem["msg"].count("\n") == 0
    assert "CALLMEMORY_DISCLOSURE must be chosen in production: `verified`" in problem["msg"]
    assert "`open`" in problem["msg"]


@pytest.mark.parametrize("choice", list(Disclosure))
def test_production_starts_with_either_disclosure_chosen(choice: Disclosure) -> None:
    assert production_settings(disclosure=choice).disclosure_policy.default is choice


def test_the_local_default_disclosure_is_open() -> None:
    assert Settings(_env_file=None).disclosure_policy == DisclosurePolicy(Disclosure.OPEN, {})


def test_the_disclosure_is_described_with_the_bots_that_differ() -> None:
    bots = {"+15559876543": VoipbinBot(disclosure=Disclosure.OPEN)}

    said = Settings(_env_file=None, disclosure=Disclosure.VERIFIED, voipbin_bots=bots).describe_disclosure()

    assert (
        said
        == "only to verified callers (CALLMEMORY_DISCLOSURE=verified); 1 VoIPBin bot(s) differ: +15559876543"
    )


def test_a_voipbin_bot_s_own_disclosure_overrides_the_global_one() -> None:
    bots = {"+15559876543": VoipbinBot(disclosure=Disclosure.VERIFIED), "+15559876500": VoipbinBot()}

    policy = Settings(_env_file=None, disclosure=Disclosure.OPEN, voipbin_bots=bots).disclosure_policy

    assert (policy.of("+15559876543"), policy.of("+15559876500")) == (Disclosure.VERIFIED, Disclosure.OPEN)


def test_a_wait_for_replicas_as_long_as_the_redis_timeout_is_refused() -> None:
    # The round trip's own deadline (redis_timeout_s) would cut the WAIT short and fail the event.
    with pytest.raises(ValidationError, match="REDIS_WAIT_TIMEOUT_S"):
        Settings(_env_file=None, redis_wait_replicas=1, redis_wait_timeout_s=2.0, redis_timeout_s=2.0)


def test_a_generated_hash_secret_is_persisted_in_the_data_dir(tmp_path: Path) -> None:
    first = Settings(_env_file=None, data_dir=tmp_path).resolved_hash_secret()
    second = Settings(_env_file=None, data_dir=tmp_path).resolved_hash_secret()

    assert first == second
    assert len(first) == 64
    assert (tmp_path / "hash_secret").stat().st_mode & 0o077 == 0


def test_database_and_redis_urls_come_from_the_usual_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/2")

    settings = Settings(_env_file=None)

    assert (settings.database_url, settings.redis_url) == ("postgresql://u@h/db", "redis://h:6379/2")


def test_api_keys_are_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CALLMEMORY_API_KEYS", '[{"key": "k-0123456789abcdefghijklmn", "bot_number": "+14155550000"}]'
    )

    [key] = Settings(_env_file=None).api_keys

    assert (key.key.get_secret_value(), key.bot_number) == ("k-0123456789abcdefghijklmn", "+14155550000")


def test_a_short_api_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(_env_file=None, api_keys=[{"key": "short"}])


SECRET = "sk-THIS-IS-SECRET-0123456789"


def run_cli(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "callmemory.cli", command]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=60)


def test_a_configuration_error_names_the_variables_and_prints_no_value() -> None:
    env = {
        **unconfigured_env(),
        "CALLMEMORY_ENVIRONMENT": "production",
        "OPENAI_API_KEY": SECRET,
        "CALLMEMORY_HASH_SECRET": SECRET,
        "CALLMEMORY_RECENT_EXCHANGES": "ten-or-so",
        "CALLMEMORY_API_KEYS": json.dumps([{"key": "sk-short-secret"}]),
    }

    ran = run_cli(env, "serve")

    assert ran.returncode != 0
    assert "CALLMEMORY_RECENT_EXCHANGES: Input should be a valid integer" in ran.stderr
    assert "CALLMEMORY_API_KEYS (item 0, key): an API key must be at least 24 characters long" in ran.stderr
    assert "recent_exchanges" not in ran.stderr
    for value in (SECRET, "sk-short-secret", "ten-or-so"):
        assert value not in ran.stderr + ran.stdout


def test_a_production_rule_is_reported_by_its_variable_without_the_values() -> None:
    env = {**unconfigured_env(), "CALLMEMORY_ENVIRONMENT": "production", "CALLMEMORY_HASH_SECRET": "changeme"}

    ran = run_cli(env, "stats")

    assert ran.returncode != 0
    assert "CALLMEMORY_HASH_SECRET must be set to a random value" in ran.stderr
    assert "'changeme'" not in ran.stderr
    assert "input_value" not in ran.stderr


def test_json_that_does_not_parse_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLMEMORY_API_KEYS", "[{not json: " + SECRET)

    with pytest.raises(SettingsError) as error:
        Settings(_env_file=None)

    assert describe_errors(error.value) == "  CALLMEMORY_API_KEYS: not valid JSON"
