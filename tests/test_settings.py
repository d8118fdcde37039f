"""Settings refuse what would be unsafe in production and keep a generated secret stable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from callmemory.settings import Settings


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
