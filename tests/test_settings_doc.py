"""The configuration page (docs/configuration.md) is generated from the settings models and cannot drift from
them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from callmemory import settings_doc
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import ApiKey, Settings

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_configuration_tables_match_the_settings_models() -> None:
    documented = settings_doc.section_of(PAGE.read_text())

    assert documented is not None, "docs/configuration.md lost its settings-table markers"
    assert documented == settings_doc.tables(), (
        "docs/configuration.md's tables are stale: run "
        "`./dev run python -m callmemory.settings_doc --write docs/configuration.md`"
    )


@pytest.mark.parametrize("model", [Settings, ApiKey, VoipbinBot])
def test_every_setting_has_a_description(model: type[BaseModel]) -> None:
    assert [name for name, field in model.model_fields.items() if not field.description] == []


def test_every_setting_is_listed_under_each_of_its_environment_names() -> None:
    table = settings_doc.settings_table()

    assert "| `DATABASE_URL` or `CALLMEMORY_DATABASE_URL` |" in table
    for name in Settings.model_fields:
        assert f"CALLMEMORY_{name.upper()}`" in table


def test_writing_replaces_only_the_generated_part(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(f"# Title\n\nbefore\n\n{settings_doc.START}\n| stale |\n{settings_doc.END}\n\nafter\n")

    settings_doc.main(["--write", str(page)])

    text = page.read_text()
    assert text.startswith("# Title\n\nbefore\n\n")
    assert text.endswith(f"{settings_doc.END}\n\nafter\n")
    assert "| stale |" not in text
    assert settings_doc.section_of(text) == settings_doc.tables()


def test_the_json_examples_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = dict(re.findall(r"export (CALLMEMORY_\w+)='(.*?)'", PAGE.read_text(), flags=re.S))
    assert set(examples) >= {"CALLMEMORY_API_KEYS", "CALLMEMORY_VOIPBIN_BOTS"}
    for name, value in examples.items():
        monkeypatch.setenv(name, value)

    settings = Settings(_env_file=None)

    assert [key.bot_number for key in settings.api_keys] == ["+14155550000", None]
    assert settings.voipbin_bot("+15559876543").mode == "managed_ai"
    assert settings.voipbin_bot("+15559876544").language == "de-DE"


def test_angle_brackets_outside_code_are_escaped_so_the_page_shows_them() -> None:
    cell = settings_doc._cell("t=<unix seconds> or `Bearer <token>`")

    assert cell == "t=&lt;unix seconds> or `Bearer <token>`"
