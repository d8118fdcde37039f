"""The README's configuration section is generated from the settings models and cannot drift from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from callmemory import settings_doc
from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import ApiKey, Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_configuration_tables_match_the_settings_models() -> None:
    documented = settings_doc.section_of(README.read_text())

    assert documented is not None, "README.md lost its settings-table markers"
    assert documented == settings_doc.tables(), (
        "README.md's configuration tables are stale: run "
        "`./dev run python -m callmemory.settings_doc --write README.md`"
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
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{settings_doc.START}\n| stale |\n{settings_doc.END}\n\nafter\n")

    settings_doc.main(["--write", str(readme)])

    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n")
    assert text.endswith(f"{settings_doc.END}\n\nafter\n")
    assert "| stale |" not in text
    assert settings_doc.section_of(text) == settings_doc.tables()


def test_the_readme_json_examples_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = dict(re.findall(r"export (CALLMEMORY_\w+)='(.*?)'", README.read_text(), flags=re.S))
    assert set(examples) >= {"CALLMEMORY_API_KEYS", "CALLMEMORY_VOIPBIN_BOTS"}
    for name, value in examples.items():
        monkeypatch.setenv(name, value)

    settings = Settings(_env_file=None)

    assert [key.bot_number for key in settings.api_keys] == ["+14155550000", None]
    assert settings.voipbin_bot("+15559876543").mode == "managed_ai"
    assert settings.voipbin_bot("+15559876544").language == "de-DE"
