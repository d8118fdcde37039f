"""The README's configuration tables, generated from the settings models so they cannot drift.

    python -m callmemory.settings_doc                  print the tables
    python -m callmemory.settings_doc --write README.md replace them in README.md, between the markers

tests/test_settings_doc.py fails whenever README.md and the models disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from callmemory.platforms.voipbin.settings import VoipbinBot
from callmemory.settings import ApiKey, Settings

START: Final = "<!-- settings-table:start: python -m callmemory.settings_doc --write README.md -->"
END: Final = "<!-- settings-table:end -->"

_LONGEST_DEFAULT: Final = 60  # longer text defaults are cut: the table is for finding a setting


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set a field of Settings, the preferred one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    prefix = Settings.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper()]


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f" ({seconds // size:g} {unit})"
    return ""


def shown_default(name: str, field: FieldInfo) -> str:
    """The default as a README cell: code, or a word when there is no value."""
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    suffix = ""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str):
        cut = value if len(value) <= _LONGEST_DEFAULT else value[: _LONGEST_DEFAULT - 1].rstrip() + "…"
        text = f'"{cut}"'
    elif isinstance(value, list | dict):
        text = json.dumps(value)
    else:
        text = str(value)
        if name.endswith("_s"):
            suffix = _duration(value)
        elif name.endswith("_ms"):
            suffix = _duration(value / 1000)
    return f"`{text}`{suffix}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    lines = ["| environment variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        names = " or ".join(f"`{n}`" for n in env_names(name, field))
        lines.append(f"| {names} | {_cell(shown_default(name, field))} | {_cell(field.description or '')} |")
    return "\n".join(lines)


def nested_table(model: type[BaseModel]) -> str:
    lines = ["| key | default | what it does |", "| --- | --- | --- |"]
    for name, field in model.model_fields.items():
        lines.append(f"| `{name}` | {_cell(shown_default(name, field))} | {_cell(field.description or '')} |")
    return "\n".join(lines)


def tables() -> str:
    """Everything between the README's markers."""
    return "\n\n".join(
        [
            settings_table(),
            "Each entry of `CALLMEMORY_API_KEYS` (a JSON list):",
            nested_table(ApiKey),
            "Each value of `CALLMEMORY_VOIPBIN_BOTS` (a JSON object keyed by the bot's E.164 number):",
            nested_table(VoipbinBot),
        ]
    )


def section_of(readme: str) -> str | None:
    """The generated part of a README, or None when its markers are missing."""
    _, start, rest = readme.partition(START)
    body, end, _ = rest.partition(END)
    return body.strip("\n") if start and end else None


def replaced(readme: str) -> str:
    if section_of(readme) is None:
        raise ValueError(f"the README has no {START} ... {END} markers")
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{tables()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print or write the README's configuration tables.")
    parser.add_argument("--write", type=Path, metavar="README", help="replace the tables in this file")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(tables() + "\n")
        return
    args.write.write_text(replaced(args.write.read_text()))


if __name__ == "__main__":
    main()
